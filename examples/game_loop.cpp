// game_loop: a fixed-rate game loop whose systems publish events to a stream,
// and a replay recorder that drains its enhanced fan-out pull handle once per
// frame, without threads of its own: Next() with a zero timeout returns what
// is there and never blocks the frame.
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <thread>

#include "kinlet/kinlet.hpp"

namespace {

// A typed payload: stored by value in the ring, no serialisation.
struct GameEvent {
  int frame;
  int entity;
  float x, y;
  char kind;  // 'm'ove, 'h'it, 's'pawn
};

using Stream = kinlet::Stream<GameEvent, kinlet::SingleWriterTraits>;

}  // namespace

int main() {
  kinlet::StreamOptions options;
  options.name = "game-events";
  options.limits = kinlet::ThroughputLimits::Unlimited();
  options.full_policy = kinlet::FullPolicy::kOverwrite;  // a flight recorder of recent frames
  auto stream = std::move(*Stream::Create(options));
  if (!stream->RegisterStreamConsumer("replay-recorder").ok()) return 1;
  auto recorder = stream->SubscribeToShard("replay-recorder", "shardId-000000000000",
                                           kinlet::IteratorPosition::Latest());
  if (!recorder.ok()) return 1;

  constexpr int kFrames = 120;
  constexpr auto kFrame = std::chrono::microseconds(1'000'000 / 240);  // 240 Hz
  kinlet::SubscribeToShardEvent<GameEvent> event;
  std::map<char, int> recorded;
  int published = 0;
  int last_frame_seen = -1;
  bool in_order = true;
  const auto start = std::chrono::steady_clock::now();
  for (int frame = 0; frame < kFrames; ++frame) {
    // Systems publish this frame's events (this thread is the only writer).
    for (int entity = 0; entity < 16; ++entity) {
      const char kind = entity % 8 == 0 ? 'h' : (frame % 60 == 0 ? 's' : 'm');
      GameEvent e{frame, entity, static_cast<float>(frame), static_cast<float>(entity), kind};
      if (!stream->PutRecord("entity-" + std::to_string(entity), e).ok()) return 1;
      ++published;
    }
    // The recorder drains its handle: everything up to now, then on with the frame.
    for (;;) {
      if (!(*recorder)->Next(&event, absl::ZeroDuration()).ok()) return 1;
      if (event.records().empty()) break;
      for (const auto& r : event.records()) {
        ++recorded[r.data.kind];
        in_order = in_order && r.data.frame >= last_frame_seen;
        last_frame_seen = r.data.frame;
      }
    }
    if (frame % 30 == 29) {
      std::printf("frame %3d: published %4d, recorded moves %4d hits %3d spawns %2d\n", frame,
                  published, recorded['m'], recorded['h'], recorded['s']);
    }
    std::this_thread::sleep_until(start + (frame + 1) * kFrame);
  }
  const int total = recorded['m'] + recorded['h'] + recorded['s'];
  std::printf(
      "%d frames in %.0f ms: %d events published, %d recorded, in order: %s\n", kFrames,
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count(),
      published, total, in_order ? "yes" : "no");
  return total == published && in_order ? 0 : 1;
}
