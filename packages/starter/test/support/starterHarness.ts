import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
} from '@nats-io/jetstream';
import type { NatsConnection, Subscription } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import {
  type ClaimReply,
  claimRequestSchema,
  decodeEvent,
  decodeWith,
  encodeEvent,
  encodeJson,
  ensureStream,
  type Naming,
  namingFor,
  queueGroups,
  type RunFinished,
  type RunLifecycleEvent,
  type RunStarted,
  subjects,
} from '@pipeline/events';
import { RUN_ID_LABEL, STARTER_ID_LABEL } from '@pipeline/runner';
import Docker from 'dockerode';
import { pino } from 'pino';
import { type NatsServer, startNatsServer } from '../../../../test/support/nats.ts';
import { loadConfig, type StarterConfig } from '../../src/config.ts';
import { type RunningStarter, startStarter } from '../../src/starter.ts';

/** The "public" file server of the claims: a loopback port nothing listens on. */
const publicFileServer = 'http://127.0.0.1:1';

export const docker = new Docker({ socketPath: '/var/run/docker.sock' });

/** What a test says about one run: its script and what the fake scheduler grants. */
export interface RunPlan {
  script: string | Uint8Array;
  contextData?: Record<string, unknown> | null;
  timeoutSeconds?: number;
  /** Serve a 404 instead of the script. */
  missingScript?: boolean;
  /**
   * What the stand-in scheduler answers to the first claims, in order, before it grants the
   * run: `drop`, a `defer` of some milliseconds, or `silent` (no answer at all).
   */
  claimAnswers?: Array<'drop' | 'silent' | { deferMs: number }>;
}

/** Everything the log holds about one run once it finished. */
export interface RunRecord {
  runId: number;
  started: RunStarted | null;
  finished: RunFinished;
  /** The assembled output: the chunks in order, then RunFinished's last piece. */
  output: string;
  chunks: number;
  /** How often the script was downloaded. */
  fetches: number;
  /** The delivery counts of the claims the starter sent for it. */
  claimDeliveries: number[];
}

interface PendingRun {
  plan: RunPlan;
  fetches: number;
  claimDeliveries: number[];
  answers: NonNullable<RunPlan['claimAnswers']>;
  started: RunStarted | null;
  chunks: Map<number, string>;
  finished: RunFinished | null;
  resolve: (record: RunRecord) => void;
}

/**
 * A starter under test with everything it talks to: its own nats-server, a file server for
 * scripts, a claim responder standing in for the scheduler (it grants every run), and a
 * reader of the log that gathers each run's events.
 */
export class StarterHarness {
  readonly naming: Naming;
  readonly network: string;
  nats!: NatsServer;
  nc!: NatsConnection;
  js!: JetStreamClient;
  jsm!: JetStreamManager;
  starter!: RunningStarter;
  config!: StarterConfig;
  private fileServer!: Server;
  private fileServerUrl = '';
  private claims!: Subscription;
  private readonly runs = new Map<string, PendingRun>();
  private readonly runsById = new Map<number, PendingRun>();
  private readonly claimed = new Set<number>();
  private stopReading = false;

  constructor(label: string) {
    const suffix = randomBytes(3).toString('hex');
    this.naming = namingFor(`st${label}${suffix}`);
    this.network = `pipeline-starter-test-${suffix}`;
  }

  /** Starts the services and a starter. */
  async start(env: Record<string, string> = {}, logFile?: string): Promise<void> {
    await this.startServices();
    await this.startStarter(env, logFile);
  }

  /**
   * Everything but the starter: nats-server (on loopback, or `natsListen`), file server,
   * claim responder, log reader.
   */
  async startServices(natsListen?: string): Promise<void> {
    this.nats = await startNatsServer(natsListen);
    this.nc = await connect({ servers: this.nats.url });
    this.js = jetstream(this.nc);
    this.jsm = await jetstreamManager(this.nc);
    await ensureStream(this.jsm, this.naming);
    await this.startFileServer();
    this.startClaimResponder();
    void this.readLog().catch((error: unknown) => {
      console.error('log reader failed', error);
    });
  }

  /** The starter's configuration under test, with the field cases' sandbox. */
  starterConfig(env: Record<string, string> = {}): StarterConfig {
    return loadConfig(this.starterEnv(env));
  }

  /** The environment of a starter under test, for one in this process or a child process. */
  starterEnv(env: Record<string, string> = {}): Record<string, string> {
    return {
      NATS_URL: this.nats.url,
      PIPELINE_SUBJECT_PREFIX: this.naming.prefix,
      STARTER_ID: `starter-test-${this.naming.prefix}`,
      PYTHON_RUNNER_CONTAINER_MEMORY: '256m',
      PYTHON_RUNNER_PIDS_LIMIT: '128',
      PYTHON_RUNNER_TMPFS_MOUNT_SIZE_IN_BYTES: String(100 * 1024 * 1024),
      PYTHON_RUNNER_NETWORK: this.network,
      PYTHON_STARTER_STOP_GRACE_SECONDS: '2',
      // Cold starts unless a test asks for the warm pool (containersLeft counts every one).
      PYTHON_STARTER_POOL_SIZE: '0',
      // The machine's firewall is not the tests' to change (test/abuse/runnerNetwork tests it).
      PYTHON_RUNNER_NETWORK_ISOLATION: 'off',
      TIME_ZONE: 'Europe/Berlin',
      // Claims name a public URL the starter cannot reach; the root redirects it here.
      PYTHON_STARTER_USE_ALTERNATIVE_FILE_SERVER_ROOT: 'true',
      PYTHON_STARTER_ALTERNATIVE_FILE_SERVER_ROOT: this.fileServerUrl,
      ...env,
    };
  }

  async startStarter(env: Record<string, string> = {}, logFile?: string): Promise<RunningStarter> {
    this.config = this.starterConfig(env);
    const logger = pino(
      { level: logFile ? 'debug' : 'warn' },
      logFile ? createWriteStream(logFile, { flags: 'a' }) : process.stderr,
    );
    this.starter = await startStarter(this.config, logger);
    return this.starter;
  }

  async stop(): Promise<void> {
    this.stopReading = true;
    await this.starter?.stop();
    this.claims?.unsubscribe();
    await this.nc?.close();
    await this.nats?.stop();
    await new Promise((resolve) => this.fileServer?.close(resolve));
    await docker
      .getNetwork(this.network)
      .remove()
      .catch(() => {});
  }

  /** Publishes a RunRequested for `plan`; resolves when its RunFinished is in the log. */
  async submit(plan: RunPlan): Promise<{ runId: number; finished: Promise<RunRecord> }> {
    const key = `s${randomBytes(6).toString('hex')}.py`;
    let resolve!: (record: RunRecord) => void;
    const finished = new Promise<RunRecord>((done) => {
      resolve = done;
    });
    const pending: PendingRun = {
      plan,
      fetches: 0,
      claimDeliveries: [],
      answers: [...(plan.claimAnswers ?? [])],
      started: null,
      chunks: new Map(),
      finished: null,
      resolve,
    };
    this.runs.set(key, pending);
    const ack = await this.js.publish(
      subjects.requested(this.naming),
      encodeEvent({
        type: 'RunRequested',
        schemaVersion: 1,
        occurredAt: new Date().toISOString(),
        data: {
          dtableUuid: '6a1f3c2e-9b7d-4e21-8f0a-0c5d2b7e9a11',
          scriptName: key,
          owner: 'user-a@example.invalid',
          orgId: -1,
          contextData: plan.contextData ?? null,
          operateFrom: 'manualy',
          operator: null,
        },
      }),
    );
    this.runsById.set(ack.seq, pending);
    return { runId: ack.seq, finished };
  }

  /** How often a run's script was downloaded so far. */
  fetchesOf(runId: number): number {
    return this.runsById.get(runId)?.fetches ?? 0;
  }

  /** The delivery counts of the claims sent so far for a run. */
  claimDeliveries(runId: number): number[] {
    return [...(this.runsById.get(runId)?.claimDeliveries ?? [])];
  }

  /** Resolves when the log holds the run's RunStarted. */
  async startedOf(runId: number): Promise<RunStarted> {
    for (;;) {
      const started = this.runsById.get(runId)?.started;
      if (started) return started;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** Submits and waits for the result. */
  async run(plan: RunPlan): Promise<RunRecord> {
    const { finished } = await this.submit(plan);
    return await finished;
  }

  /** Containers of this starter that exist now, optionally only those of one run. */
  async containers(runId?: number): Promise<Docker.Container[]> {
    const label = [`${STARTER_ID_LABEL}=${this.config.starterId}`];
    if (runId !== undefined) label.push(`${RUN_ID_LABEL}=${runId}`);
    const found = await docker.listContainers({ all: true, filters: { label } });
    return found.map((entry) => docker.getContainer(entry.Id));
  }

  /**
   * Containers of this starter (or of one run) still there once their removal had time to
   * finish: a run's result is published before its container is torn down, so this waits
   * up to 10 s for the count to reach 0 and returns what is left then.
   */
  async containersLeft(runId?: number): Promise<number> {
    for (let attempt = 0; ; attempt++) {
      const left = (await this.containers(runId)).length;
      if (left === 0 || attempt >= 200) return left;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  private async startFileServer(): Promise<void> {
    this.fileServer = createServer((request, response) => {
      const key = decodeURIComponent((request.url ?? '').replace(/^\/files\//, ''));
      const pending = this.runs.get(key);
      if (!pending || pending.plan.missingScript) {
        response.writeHead(404).end('not found');
        return;
      }
      pending.fetches++;
      const body =
        typeof pending.plan.script === 'string'
          ? Buffer.from(pending.plan.script, 'utf8')
          : pending.plan.script;
      response.writeHead(200, { 'content-type': 'text/x-python' }).end(body);
    });
    await new Promise<void>((resolve) => this.fileServer.listen(0, '127.0.0.1', resolve));
    const { port } = this.fileServer.address() as AddressInfo;
    this.fileServerUrl = `http://127.0.0.1:${port}`;
  }

  /**
   * Answers claims as the scheduler would: reads the request from the stream by its
   * sequence, grants it once (a second claim of the same run is dropped), and plays the
   * plan's scripted answers first.
   */
  private startClaimResponder(): void {
    this.claims = this.nc.subscribe(subjects.claims(this.naming), {
      queue: queueGroups.schedulers,
      callback: (error, message) => {
        if (error) return;
        void this.answerClaim(message.data).then((reply) => {
          if (reply) message.respond(encodeJson(reply));
        });
      },
    });
  }

  private async answerClaim(data: Uint8Array): Promise<ClaimReply | null> {
    const request = decodeWith(claimRequestSchema, data);
    if (!request.ok) return null;
    const { runId, deliveryCount } = request.value;
    const stored = await this.jsm.streams.getMessage(this.naming.stream, { seq: runId });
    const event = stored ? decodeEvent(stored.data) : null;
    const key = event?.ok && event.value.type === 'RunRequested' ? event.value.data.scriptName : '';
    const pending = this.runs.get(key);
    if (!pending) return { decision: 'drop', reason: 'unknown run' };
    pending.claimDeliveries.push(deliveryCount);
    if (this.claimed.has(runId)) return { decision: 'drop', reason: 'already claimed' };
    const scripted = pending.answers.shift();
    if (scripted === 'silent') return null;
    if (scripted === 'drop') return { decision: 'drop', reason: 'test says drop' };
    if (scripted)
      return { decision: 'defer', delayMs: scripted.deferMs, reason: 'test says defer' };
    this.claimed.add(runId);
    return {
      decision: 'run',
      scriptUrl: `${publicFileServer}/files/${encodeURIComponent(key)}`,
      apiToken: 'TEMP-TOKEN',
      dtableWebUrl: 'http://127.0.0.1:1/',
      timeoutSeconds: pending.plan.timeoutSeconds ?? 10,
    };
  }

  /** An ordered consumer over every run's events, dispatching them to the waiting tests. */
  private async readLog(): Promise<void> {
    const consumer = await this.js.consumers.get(this.naming.stream, {
      filter_subjects: subjects.lifecycleAll(this.naming),
      deliver_policy: DeliverPolicy.All,
    });
    const messages = await consumer.consume();
    for await (const message of messages) {
      if (this.stopReading) break;
      const decoded = decodeEvent(message.data);
      if (decoded.ok && decoded.value.type !== 'RunRequested') this.record(decoded.value);
    }
  }

  private record(event: RunLifecycleEvent): void {
    const pending = this.runsById.get(event.runId);
    if (!pending) return;
    if (event.type === 'RunStarted') pending.started = event;
    if (event.type === 'RunOutputChunk') pending.chunks.set(event.data.index, event.data.text);
    if (event.type !== 'RunFinished' || pending.finished) return;
    pending.finished = event;
    const pieces = [...pending.chunks.entries()].sort(([left], [right]) => left - right);
    pending.resolve({
      runId: event.runId,
      started: pending.started,
      finished: event,
      output: pieces.map(([, text]) => text).join('') + event.data.output,
      chunks: event.data.outputChunks,
      fetches: pending.fetches,
      claimDeliveries: pending.claimDeliveries,
    });
  }
}
