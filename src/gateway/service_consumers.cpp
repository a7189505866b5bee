// src/gateway/service_consumers.cpp: enhanced fan-out consumers: Register,
// Deregister, Describe, ListStreamConsumers. (SubscribeToShard:
// service_subscribe.cpp.)
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "service_impl.hpp"

namespace kinlet::gateway {

std::string KinesisService::Impl::WireConsumerArn(const StreamT& stream,
                                                  std::string_view kinlet_arn) const {
  std::string_view suffix = kinlet_arn;
  if (absl::StartsWith(detail::ToAbsl(kinlet_arn), stream.arn())) {
    suffix = kinlet_arn.substr(stream.arn().size());
  }
  return absl::StrCat(StreamArn(stream.name()), detail::ToAbsl(suffix));
}

void KinesisService::Impl::WriteConsumer(wire::Writer& w, const StreamT& stream,
                                         const StreamConsumerDescription& d) {
  w.Key("ConsumerName");
  w.String(d.consumer_name);
  w.Key("ConsumerARN");
  w.String(WireConsumerArn(stream, d.consumer_arn));
  w.Key("ConsumerStatus");
  w.String(ConsumerStatusName(d.consumer_status));
  w.Key("ConsumerCreationTimestamp");
  w.Time(d.consumer_creation_timestamp);
}

namespace {

absl::Status ConsumerArnPattern(std::string_view arn) {
  return PatternError("consumerARN", arn,
                      "Member must satisfy regular expression pattern: "
                      "^(arn):aws.*:kinesis:.*:\\d{12}:.*stream\\/[a-zA-Z0-9_.-]+\\/consumer\\/"
                      "[a-zA-Z0-9_.-]+:[0-9]+");
}

}  // namespace

// The stream and kinlet's consumer ARN for a wire consumer ARN.
absl::StatusOr<std::pair<StreamPtr, std::string>> ResolveConsumerArn(
    KinesisService::Impl& impl, std::string_view arn, KinesisService::Impl::Plane plane) {
  const size_t at = arn.find("/consumer/");
  if (at == std::string_view::npos) return ConsumerArnPattern(arn);
  std::string_view rest = arn.substr(at);  // "/consumer/<name>:<seconds>"
  const size_t colon = rest.rfind(':');
  int64_t seconds = 0;
  if (colon == std::string_view::npos || colon <= 10 ||
      !absl::SimpleAtoi(detail::ToAbsl(rest.substr(colon + 1)), &seconds)) {
    return ConsumerArnPattern(arn);
  }
  absl::StatusOr<std::string> name = impl.NameFromArn(arn.substr(0, at));
  if (!name.ok()) {
    if (IsValidationError(name.status())) return ConsumerArnPattern(arn);
    return name.status();
  }
  absl::StatusOr<StreamPtr> stream = impl.StreamByName(*name, plane);
  if (!stream.ok()) return stream.status();
  std::string kinlet_arn = absl::StrCat((*stream)->arn(), detail::ToAbsl(rest));
  return std::make_pair(*std::move(stream), std::move(kinlet_arn));
}

namespace {
// StreamARN + ConsumerName, or ConsumerARN: the stream and the consumer (name or kinlet ARN).
absl::StatusOr<std::pair<StreamPtr, std::string>> EitherConsumer(KinesisService::Impl& impl,
                                                                 const Value& in) {
  absl::StatusOr<std::optional<std::string_view>> arn = OptString(in, "ConsumerARN");
  if (!arn.ok()) return arn.status();
  absl::StatusOr<std::optional<std::string_view>> name = OptString(in, "ConsumerName");
  if (!name.ok()) return name.status();
  absl::StatusOr<std::optional<std::string_view>> stream_arn = OptString(in, "StreamARN");
  if (!stream_arn.ok()) return stream_arn.status();
  if (*arn) return ResolveConsumerArn(impl, **arn, KinesisService::Impl::Plane::kDescribe);
  if (!*name || !*stream_arn) {
    return InvalidArgument(
        "Either ConsumerARN or both ConsumerName and StreamARN must be provided.");
  }
  absl::StatusOr<StreamPtr> stream = impl.ResolveStream(in, KinesisService::Impl::Plane::kDescribe);
  if (!stream.ok()) return stream.status();
  return std::make_pair(*std::move(stream), std::string(**name));
}
}  // namespace

absl::Status KinesisService::Impl::RegisterStreamConsumer(Call& c) {
  absl::StatusOr<std::optional<std::string_view>> arn = OptString(c.in, "StreamARN");
  if (!arn.ok()) return arn.status();
  if (!*arn) return NullMember("streamARN");
  absl::StatusOr<std::optional<std::string_view>> name = OptString(c.in, "ConsumerName");
  if (!name.ok()) return name.status();
  if (!*name) return NullMember("consumerName");
  absl::StatusOr<StreamPtr> stream = ResolveStream(c.in, Plane::kControl);
  if (!stream.ok()) return stream.status();
  absl::StatusOr<StreamConsumerDescription> d = (*stream)->RegisterStreamConsumer(**name);
  if (!d.ok()) return d.status();
  wire::Writer& w = c.out;
  w.BeginObject();
  w.Key("Consumer");
  w.BeginObject();
  WriteConsumer(w, **stream, *d);
  w.EndObject();
  w.EndObject();
  return absl::OkStatus();
}

absl::Status KinesisService::Impl::DeregisterStreamConsumer(Call& c) {
  absl::StatusOr<std::pair<StreamPtr, std::string>> who = EitherConsumer(*this, c.in);
  if (!who.ok()) return who.status();
  return who->first->DeregisterStreamConsumer(who->second);
}

absl::Status KinesisService::Impl::DescribeStreamConsumer(Call& c) {
  absl::StatusOr<std::pair<StreamPtr, std::string>> who = EitherConsumer(*this, c.in);
  if (!who.ok()) return who.status();
  absl::StatusOr<StreamConsumerDescription> d = who->first->DescribeStreamConsumer(who->second);
  if (!d.ok()) return d.status();
  wire::Writer& w = c.out;
  w.BeginObject();
  w.Key("ConsumerDescription");
  w.BeginObject();
  WriteConsumer(w, *who->first, *d);
  w.Key("StreamARN");
  w.String(StreamArn(who->first->name()));
  w.EndObject();
  w.EndObject();
  return absl::OkStatus();
}

absl::Status KinesisService::Impl::ListStreamConsumers(Call& c) {
  absl::StatusOr<std::optional<std::string_view>> arn = OptString(c.in, "StreamARN");
  if (!arn.ok()) return arn.status();
  if (!*arn) return NullMember("streamARN");
  absl::StatusOr<std::optional<int64_t>> max = OptInt(c.in, "MaxResults");
  if (!max.ok()) return max.status();
  if (*max && (**max < 1 || **max > 10000)) return RangeError("maxResults", **max, 1, 10000);
  absl::StatusOr<std::optional<std::string_view>> token = OptString(c.in, "NextToken");
  if (!token.ok()) return token.status();
  absl::StatusOr<std::optional<absl::Time>> created =
      OptTime(c.in, c.format, "StreamCreationTimestamp");
  if (!created.ok()) return created.status();
  absl::StatusOr<StreamPtr> stream = ResolveStream(c.in, Plane::kDescribe);
  if (!stream.ok()) return stream.status();
  absl::StatusOr<std::vector<StreamConsumerDescription>> all = (*stream)->ListStreamConsumers();
  if (!all.ok()) return all.status();
  size_t from = 0;
  const int64_t now = NowMs();
  if (*token) {
    // kinlet-lc.<offset>.<issued ms>
    const std::vector<absl::string_view> parts = absl::StrSplit(detail::ToAbsl(**token), '.');
    int64_t offset = 0, issued = 0;
    if (parts.size() != 3 || parts[0] != "kinlet-lc" || !absl::SimpleAtoi(parts[1], &offset) ||
        !absl::SimpleAtoi(parts[2], &issued) || offset < 0) {
      return InvalidArgument(absl::StrCat("NextToken ", detail::ToAbsl(**token), " is invalid."));
    }
    if (now - issued > 300'000) {
      return ExpiredNextToken(absl::StrCat("The NextToken has expired: it was issued at ", issued,
                                           " and tokens are valid for 300000 milliseconds."));
    }
    from = static_cast<size_t>(offset);
  }
  const size_t page = static_cast<size_t>(max->value_or(100));
  wire::Writer& w = c.out;
  w.BeginObject();
  w.Key("Consumers");
  w.BeginArray();
  size_t i = from;
  for (; i < all->size() && i < from + page; ++i) {
    w.BeginObject();
    WriteConsumer(w, **stream, (*all)[i]);
    w.EndObject();
  }
  w.EndArray();
  if (i < all->size()) {
    w.Key("NextToken");
    w.String(absl::StrCat("kinlet-lc.", i, ".", now));
  }
  w.EndObject();
  return absl::OkStatus();
}

}  // namespace kinlet::gateway
