// The AWS SDK for JavaScript v3 (@aws-sdk/client-kinesis, pinned in package-lock.json) against a
// local Kinesis. Usage:
//   node js_suite.js ENDPOINT h2|http1 [--kinesalite]
// h2:    the client's default request handler (NodeHttp2Handler: HTTP/2 for every call, h2c with
//        prior knowledge against an http:// endpoint, h2 by ALPN against https://; for https the
//        caller trusts the server's certificate through NODE_EXTRA_CA_CERTS);
// http1: requestHandler: new NodeHttpHandler() (HTTP/1.1 keep-alive, chunked event streams).
// --kinesalite leaves out what kinesalite lacks (StreamARN, consumers, SubscribeToShard,
// UpdateShardCount, ...). Prints one line per step; exits 1 at the first failed step.
'use strict';
const assert = require('node:assert/strict');
const k = require('@aws-sdk/client-kinesis');
const { NodeHttpHandler } = require('@smithy/node-http-handler');

const [endpoint, mode, ...flags] = process.argv.slice(2);
const kinesalite = flags.includes('--kinesalite');
if (!endpoint || !['h2', 'http1'].includes(mode)) {
  console.error('usage: node js_suite.js ENDPOINT h2|http1 [--kinesalite]');
  process.exit(2);
}
if (!/^https?:\/\/127\.0\.0\.1:\d+$/.test(endpoint)) {
  console.error('refusing a non-loopback endpoint: ' + endpoint);
  process.exit(2);
}

const config = {
  endpoint,
  region: 'us-east-1',
  credentials: { accessKeyId: process.env.AWS_ACCESS_KEY_ID, secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY },
  maxAttempts: 2,
};
if (mode === 'http1') config.requestHandler = new NodeHttpHandler();
const client = new k.KinesisClient(config);
const REGION = 'us-east-1';
const ACCOUNT = '000000000000';
const MAX_HASH_KEY = (1n << 128n) - 1n;
const arnOf = (name) => `arn:aws:kinesis:${REGION}:${ACCOUNT}:stream/${name}`;
const name = `js-${mode}-${process.pid}`;
const te = new TextEncoder();
const td = new TextDecoder();
const send = (Command, input) => client.send(new Command(input));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let steps = 0;
async function step(what, fn) {
  try {
    await fn();
    steps++;
    console.log(`ok   ${what}`);
  } catch (e) {
    console.log(`FAIL ${what}: ${e && e.name}: ${e && e.message}`);
    if (e && e.$metadata) console.log(`     $metadata ${JSON.stringify(e.$metadata)}`);
    if (e && e.stack) console.log(e.stack.split('\n').slice(0, 6).join('\n'));
    throw e;
  }
}

async function expectError(name, promise) {
  try {
    await promise;
  } catch (e) {
    assert.equal(e.name, name, `${e.name}: ${e.message}`);
    assert.equal(e.$metadata.httpStatusCode, 400);
    return e;
  }
  assert.fail(`expected ${name}`);
}

async function waitActive(streamName) {
  for (let i = 0; i < 200; i++) {
    const s = await send(k.DescribeStreamSummaryCommand, { StreamName: streamName });
    if (s.StreamDescriptionSummary.StreamStatus === 'ACTIVE') return s.StreamDescriptionSummary;
    await sleep(50);
  }
  assert.fail('stream never ACTIVE');
}

async function readAll(streamName, shardId, extra = {}) {
  let { ShardIterator: it } = await send(k.GetShardIteratorCommand, {
    StreamName: streamName,
    ShardId: shardId,
    ShardIteratorType: 'TRIM_HORIZON',
    ...extra,
  });
  const out = [];
  for (let i = 0; i < 20 && it; i++) {
    const page = await send(k.GetRecordsCommand, { ShardIterator: it });
    out.push(...page.Records);
    if (page.Records.length === 0) break;
    it = page.NextShardIterator;
  }
  return out;
}

async function main() {
  if (mode === 'h2') {
    await step('the default request handler is HTTP/2', async () => {
      assert.equal(client.config.requestHandler.constructor.name, 'NodeHttp2Handler');
    });
  }
  await step('CreateStream + waitUntilStreamExists', async () => {
    await send(k.CreateStreamCommand, { StreamName: name, ShardCount: 2 });
    const r = await k.waitUntilStreamExists({ client, maxWaitTime: 60, minDelay: 1, maxDelay: 1 }, { StreamName: name });
    assert.equal(r.state, 'SUCCESS');
  });
  await step('DescribeStream / DescribeStreamSummary', async () => {
    const d = (await send(k.DescribeStreamCommand, { StreamName: name })).StreamDescription;
    assert.equal(d.StreamARN, arnOf(name));
    assert.equal(d.StreamStatus, 'ACTIVE');
    assert.ok(d.StreamCreationTimestamp instanceof Date);
    assert.deepEqual(d.Shards.map((s) => s.ShardId), ['shardId-000000000000', 'shardId-000000000001']);
    assert.equal(d.Shards[1].HashKeyRange.EndingHashKey, MAX_HASH_KEY.toString());
    const s = (await send(k.DescribeStreamSummaryCommand, { StreamName: name })).StreamDescriptionSummary;
    assert.equal(s.OpenShardCount, 2);
  });
  await step('ListStreams / paginateListStreams / ListShards with NextToken', async () => {
    const l = await send(k.ListStreamsCommand, {});
    assert.ok(l.StreamNames.includes(name));
    if (!kinesalite) {
      // The SDK's ListStreams paginator follows NextToken (kinesalite predates it).
      const names = [];
      for await (const page of k.paginateListStreams({ client, pageSize: 1 }, {})) {
        assert.ok(page.StreamNames.length <= 1);
        names.push(...page.StreamNames);
      }
      assert.ok(names.includes(name));
      assert.equal(new Set(names).size, names.length);
    }
    const ids = [];
    let page = await send(k.ListShardsCommand, { StreamName: name, MaxResults: 1 });
    ids.push(...page.Shards.map((s) => s.ShardId));
    while (page.NextToken) {
      page = await send(k.ListShardsCommand, { NextToken: page.NextToken, MaxResults: 1 });
      ids.push(...page.Shards.map((s) => s.ShardId));
    }
    assert.deepEqual(ids, ['shardId-000000000000', 'shardId-000000000001']);
  });
  let firstSeq;
  await step('PutRecord / PutRecords (explicit hash keys)', async () => {
    const p = await send(k.PutRecordCommand, { StreamName: name, Data: te.encode('js-one'), PartitionKey: 'a', ExplicitHashKey: '0' });
    assert.equal(p.ShardId, 'shardId-000000000000');
    assert.match(p.SequenceNumber, /^[1-9]\d*$/);
    firstSeq = p.SequenceNumber;
    const r = await send(k.PutRecordsCommand, {
      StreamName: name,
      Records: [0, 1, 2, 3].map((i) => ({
        Data: te.encode(`js-batch-${i}`),
        PartitionKey: `p${i}`,
        ExplicitHashKey: i % 2 ? MAX_HASH_KEY.toString() : '0',
      })),
    });
    assert.equal(r.FailedRecordCount, 0);
    assert.deepEqual(r.Records.map((x) => x.ShardId), ['shardId-000000000000', 'shardId-000000000001', 'shardId-000000000000', 'shardId-000000000001']);
  });
  await step('GetShardIterator (TRIM_HORIZON, AT_SEQUENCE_NUMBER, AT_TIMESTAMP) / GetRecords', async () => {
    const recs = await readAll(name, 'shardId-000000000000');
    assert.deepEqual(recs.map((r) => td.decode(r.Data)), ['js-one', 'js-batch-0', 'js-batch-2']);
    assert.ok(recs[0].ApproximateArrivalTimestamp instanceof Date);
    const at = await readAll(name, 'shardId-000000000000', { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: firstSeq });
    assert.deepEqual(at.map((r) => td.decode(r.Data)), ['js-batch-0', 'js-batch-2']);
    // JS sends fractional epoch seconds (boto3 truncates to whole seconds).
    const ts = await readAll(name, 'shardId-000000000001', { ShardIteratorType: 'AT_TIMESTAMP', Timestamp: new Date(Date.now() - 60500) });
    assert.deepEqual(ts.map((r) => td.decode(r.Data)), ['js-batch-1', 'js-batch-3']);
  });
  await step('tags and retention', async () => {
    await send(k.AddTagsToStreamCommand, { StreamName: name, Tags: { x: '1', y: '2' } });
    const t = await send(k.ListTagsForStreamCommand, { StreamName: name });
    assert.deepEqual(t.Tags, [{ Key: 'x', Value: '1' }, { Key: 'y', Value: '2' }]);
    assert.equal(t.HasMoreTags, false);
    await send(k.RemoveTagsFromStreamCommand, { StreamName: name, TagKeys: ['x'] });
    assert.deepEqual((await send(k.ListTagsForStreamCommand, { StreamName: name })).Tags, [{ Key: 'y', Value: '2' }]);
    await send(k.IncreaseStreamRetentionPeriodCommand, { StreamName: name, RetentionPeriodHours: 36 });
    assert.equal((await waitActive(name)).RetentionPeriodHours, 36);
    await send(k.DecreaseStreamRetentionPeriodCommand, { StreamName: name, RetentionPeriodHours: 24 });
  });
  await step('SplitShard / MergeShards', async () => {
    await send(k.SplitShardCommand, { StreamName: name, ShardToSplit: 'shardId-000000000000', NewStartingHashKey: (1n << 126n).toString() });
    await waitActive(name);
    await send(k.MergeShardsCommand, { StreamName: name, ShardToMerge: 'shardId-000000000002', AdjacentShardToMerge: 'shardId-000000000003' });
    await waitActive(name);
    const d = (await send(k.DescribeStreamCommand, { StreamName: name })).StreamDescription;
    assert.deepEqual(d.Shards.map((s) => s.ShardId), ['shardId-000000000000', 'shardId-000000000001', 'shardId-000000000002', 'shardId-000000000003', 'shardId-000000000004']);
    assert.equal(d.Shards[4].ParentShardId, 'shardId-000000000002');
  });
  await step('errors: ResourceNotFoundException, ResourceInUseException, InvalidArgumentException', async () => {
    await expectError('ResourceNotFoundException', send(k.DescribeStreamCommand, { StreamName: name + '-missing' }));
    await expectError('ResourceInUseException', send(k.CreateStreamCommand, { StreamName: name, ShardCount: 1 }));
    await expectError('InvalidArgumentException', send(k.PutRecordCommand, { StreamName: name, Data: te.encode('x'), PartitionKey: 'k', ExplicitHashKey: (1n << 128n).toString() }));
  });

  if (!kinesalite) await gatewayOnly();

  await step('DeleteStream + waitUntilStreamNotExists', async () => {
    await send(k.DeleteStreamCommand, { StreamName: name, EnforceConsumerDeletion: true });
    const r = await k.waitUntilStreamNotExists({ client, maxWaitTime: 60, minDelay: 1, maxDelay: 1 }, { StreamName: name });
    assert.equal(r.state, 'SUCCESS');
  });
}

async function gatewayOnly() {
  const arn = arnOf(name);
  await step('StreamARN addressing (PutRecord, DescribeStreamSummary)', async () => {
    const p = await send(k.PutRecordCommand, { StreamARN: arn, Data: te.encode('by-arn'), PartitionKey: 'k' });
    assert.match(p.ShardId, /^shardId-/);
    const s = (await send(k.DescribeStreamSummaryCommand, { StreamARN: arn })).StreamDescriptionSummary;
    assert.equal(s.StreamName, name);
  });
  await step('UpdateShardCount / UpdateStreamMode', async () => {
    const u = await send(k.UpdateShardCountCommand, { StreamName: name, TargetShardCount: 4, ScalingType: 'UNIFORM_SCALING' });
    assert.equal(u.TargetShardCount, 4);
    assert.equal((await waitActive(name)).OpenShardCount, 4);
    await send(k.UpdateStreamModeCommand, { StreamARN: arn, StreamModeDetails: { StreamMode: 'ON_DEMAND' } });
    assert.equal((await waitActive(name)).StreamModeDetails.StreamMode, 'ON_DEMAND');
    await send(k.UpdateStreamModeCommand, { StreamARN: arn, StreamModeDetails: { StreamMode: 'PROVISIONED' } });
    await waitActive(name);
  });
  await step('DescribeLimits / Enable/DisableEnhancedMonitoring / Start/StopStreamEncryption', async () => {
    const l = await send(k.DescribeLimitsCommand, {});
    assert.equal(typeof l.ShardLimit, 'number');
    const e = await send(k.EnableEnhancedMonitoringCommand, { StreamName: name, ShardLevelMetrics: ['IncomingRecords'] });
    assert.deepEqual(e.DesiredShardLevelMetrics, ['IncomingRecords']);
    await send(k.DisableEnhancedMonitoringCommand, { StreamName: name, ShardLevelMetrics: ['IncomingRecords'] });
    await send(k.StartStreamEncryptionCommand, { StreamName: name, EncryptionType: 'KMS', KeyId: 'alias/aws/kinesis' });
    assert.equal((await waitActive(name)).EncryptionType, 'KMS');
    await send(k.StopStreamEncryptionCommand, { StreamName: name, EncryptionType: 'KMS', KeyId: 'alias/aws/kinesis' });
    await waitActive(name);
  });
  let consumerARN;
  await step('Register/Describe/ListStreamConsumers', async () => {
    const c = (await send(k.RegisterStreamConsumerCommand, { StreamARN: arn, ConsumerName: 'js-efo' })).Consumer;
    assert.ok(c.ConsumerARN.startsWith(arn + '/consumer/js-efo:'));
    assert.ok(c.ConsumerCreationTimestamp instanceof Date);
    consumerARN = c.ConsumerARN;
    for (let i = 0; i < 200; i++) {
      const d = (await send(k.DescribeStreamConsumerCommand, { ConsumerARN: consumerARN })).ConsumerDescription;
      if (d.ConsumerStatus === 'ACTIVE') break;
      await sleep(50);
    }
    const l = await send(k.ListStreamConsumersCommand, { StreamARN: arn });
    assert.deepEqual(l.Consumers.map((x) => x.ConsumerName), ['js-efo']);
  });
  await step(`SubscribeToShard (${mode}): events, ContinuationSequenceNumber, live records`, async () => {
    const shardId = (await send(k.ListShardsCommand, { StreamName: name, ShardFilter: { Type: 'AT_LATEST' } })).Shards[0].ShardId;
    const range = (await send(k.ListShardsCommand, { StreamName: name, ShardFilter: { Type: 'AT_LATEST' } })).Shards[0].HashKeyRange;
    const put = (data) => send(k.PutRecordCommand, { StreamName: name, Data: te.encode(data), PartitionKey: 'k', ExplicitHashKey: range.StartingHashKey });
    await put('efo-0');
    await put('efo-1');
    const res = await send(k.SubscribeToShardCommand, { ConsumerARN: consumerARN, ShardId: shardId, StartingPosition: { Type: 'TRIM_HORIZON' } });
    const got = [];
    let continuation = null;
    let livePut = false;
    const deadline = Date.now() + 20000;
    for await (const ev of res.EventStream) {
      assert.ok(ev.SubscribeToShardEvent, `unexpected event ${JSON.stringify(Object.keys(ev))}`);
      const body = ev.SubscribeToShardEvent;
      assert.match(body.ContinuationSequenceNumber, /^(0|[1-9]\d*)$/);
      assert.equal(typeof body.MillisBehindLatest, 'number');
      continuation = body.ContinuationSequenceNumber;
      got.push(...body.Records.map((r) => td.decode(r.Data)));
      if (got.length >= 2 && !livePut) {
        livePut = true;
        await put('efo-live');
      }
      if (got.length >= 3 || Date.now() > deadline) break; // ends the subscription
    }
    assert.deepEqual(got, ['efo-0', 'efo-1', 'efo-live']);
    assert.ok(continuation);
  });
  await step('DeregisterStreamConsumer', async () => {
    await send(k.DeregisterStreamConsumerCommand, { ConsumerARN: consumerARN });
  });
}

main().then(
  () => {
    console.log(`js suite: all ${steps} steps ok`);
    client.destroy();
    process.exit(0);
  },
  () => {
    console.log(`js suite: ${steps} steps ok, then one failed`);
    client.destroy();
    process.exit(1);
  },
);
