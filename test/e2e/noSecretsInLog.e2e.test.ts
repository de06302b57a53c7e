import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { namingFor, subjects } from '@pipeline/events';
import { type Pipeline, startPipeline } from '../support/pipeline.ts';

// The log is an audit record operators read and replay (issue #5): no secret may be in it.
// The temporary API token a script gets travels only in the claim reply.

let pipeline: Pipeline;

before(async () => {
  pipeline = await startPipeline({ label: 'secrets' });
});

after(async () => {
  await pipeline?.stop();
});

test('no temporary API token and no shared secret is ever written to the log', async () => {
  for (const script of [
    'import os\nprint(len(os.environ["api_token"]) > 0)\n',
    'raise SystemExit(2)\n',
  ]) {
    const submitted = await pipeline.submit({
      script,
      body: { temp_api_token: 'token-sent-by-seatable-itself' },
    });
    const result = await pipeline.waitFinished(submitted.id, submitted.scriptName);
    assert.equal(result.state, 'finished');
  }
  const issuedTokens = pipeline.standin.issuedFiles().map((file) => file.tempApiToken);
  assert.ok(issuedTokens.length >= 2, 'the scripts got their tokens');
  const secrets = [...issuedTokens, pipeline.token, 'token-sent-by-seatable-itself'];

  const connection = await connect({ servers: pipeline.nats.url });
  const naming = namingFor(pipeline.env.PIPELINE_SUBJECT_PREFIX ?? '');
  const consumer = await jetstream(connection).consumers.get(naming.stream, {
    filter_subjects: subjects.all(naming),
  });
  const decoder = new TextDecoder();
  let scanned = 0;
  for (;;) {
    const message = await consumer.next({ expires: 1000 });
    if (!message) break;
    const text = decoder.decode(message.data);
    for (const secret of secrets) {
      assert.ok(!text.includes(secret), `event ${message.seq} (${message.subject}) holds a secret`);
    }
    scanned += 1;
  }
  await connection.close();

  assert.ok(scanned >= 8, `${scanned} events scanned`);
});
