import { LANES, type Lane } from "../core/lanes.ts";
import { SimBatcher } from "./sim-batcher.ts";
import { virtualClock } from "./virtual-clock.ts";
import type { Component } from "../core/routes.ts";
import { SimComponent, SimCpu, SimLedger, SimQueue, type SimJob, type SimOutcome, type SimSetup } from "./world.ts";

/** A poller's long poll (the event source mapping's, and the local poller's): 20 s, SQS's longest. */
const POLL_WAIT_MS = 20_000;

export type SimRun = {
  readonly outcomes: readonly SimOutcome[];
  /** The last answer, ms of virtual time; when the simulation stopped if some job has none. */
  readonly endMs: number;
  /** GPU-busy ms and generated tokens per second of virtual time, over every copy of the route. */
  readonly busyMsBySecond: readonly number[];
  readonly tokensBySecond: readonly number[];
  readonly gpus: number;
  readonly batcherInvocations: number;
};

/**
 * Runs a trace through the route on a virtual clock: each job is submitted at its time into its
 * lane's queue; each lane's event source mapping (up to MaximumConcurrency pollers) delivers up to
 * BatchSize messages to a batcher invocation, which runs the real `decideNext` against the
 * simulated ledger and the emulator's engines. Stops when every job is answered or at `untilMs`.
 */
export function simulate(setup: SimSetup, trace: readonly SimJob[], options: { readonly untilMs?: number } = {}): SimRun {
  const clock = virtualClock();
  const queues = { interactive: new SimQueue(clock), batch: new SimQueue(clock) } satisfies Record<Lane, SimQueue>;
  const ledger = new SimLedger();
  const components = new Map(setup.route.components.map((c) => [c.name, new SimComponent(c, clock)]));
  const outcomes = new Map(trace.map((job) => [job.id, { job, completionTokens: 0 } as SimOutcome]));
  const cpu = new SimCpu(clock, setup.cpu);
  const world = { clock, setup, queues, ledger, components, outcomes, cpu };
  let invocations = 0;

  for (const job of trace) {
    // A batch-lane job is a batch file's line, queued by the file's ingestion in bulk before its
    // time here (the lanes bench: the time its files were accepted); a lone POST costs its own.
    if (job.lane === "batch") clock.setTimer(() => queues.batch.send(job), job.atMs);
    else {
      clock.setTimer(() => {
        cpu.run(setup.overheads.submitMs, () => queues[job.lane].send(job));
        cpu.run(setup.cpu?.offPathMsPerJob ?? 0, () => undefined);
      }, job.atMs);
    }
  }

  const { mapping } = setup;
  const poll = (lane: Lane) => {
    const queue = queues[lane];
    queue.longPoll(mapping.batchSize, POLL_WAIT_MS, (first) => {
      if (first.length === 0) return poll(lane);
      const deliver = (jobs: SimJob[]) =>
        cpu.run(setup.overheads.deliverMs, () => {
          invocations++;
          new SimBatcher(world, jobs, lane, () => poll(lane));
        });
      // A batching window: the mapping gathers until BatchSize or the window's end.
      if (mapping.batchingWindowMs <= 0 || first.length >= mapping.batchSize) return deliver(first);
      clock.setTimer(() => deliver([...first, ...queue.receive(mapping.batchSize - first.length)]), mapping.batchingWindowMs);
    });
  };
  for (const lane of LANES) for (let i = 0; i < mapping.maximumConcurrency; i++) poll(lane);

  const lastArrival = trace.reduce((latest, job) => Math.max(latest, job.atMs), 0);
  const untilMs = options.untilMs ?? lastArrival + 600_000;
  const unanswered = () => [...outcomes.values()].some((o) => o.finishedMs === undefined);
  // In slices, so that the run stops soon after the last answer rather than at the pollers' next timeout.
  for (let sliceEnd = 1000; sliceEnd <= untilMs + 1000; sliceEnd += 1000) {
    clock.run(Math.min(sliceEnd, untilMs));
    if ((sliceEnd > lastArrival && !unanswered()) || clock.pending() === 0) break;
  }
  const sum = (pick: (c: SimComponent) => readonly number[]) => {
    const total: number[] = [];
    for (const c of components.values()) pick(c).forEach((v, i) => (total[i] = (total[i] ?? 0) + (v ?? 0)));
    return Array.from(total, (v) => v ?? 0);
  };
  return {
    outcomes: [...outcomes.values()],
    endMs: endOf([...outcomes.values()], clock.now()),
    busyMsBySecond: sum((c) => c.busyMsBySecond),
    tokensBySecond: sum((c) => c.tokensBySecond),
    gpus: setup.route.components.reduce((n, c) => n + c.copies * c.accelerators_per_copy, 0),
    batcherInvocations: invocations,
  };
}

/**
 * The trace sent straight to the component's copies, each job at its arrival, with no pipeline:
 * what the bench's "engine alone" run measures. Beside the pipeline's prediction it tells how far
 * a loaded machine ran the emulator from its own model.
 */
export function simulateEngineAlone(component: Component, trace: readonly SimJob[], options: { readonly untilMs?: number } = {}): SimRun {
  const clock = virtualClock();
  const copies = new SimComponent(component, clock);
  const outcomes = trace.map((job): SimOutcome => ({ job, completionTokens: 0 }));
  for (const outcome of outcomes) {
    clock.setTimer(() => {
      outcome.startedMs = clock.now();
      const { job } = outcome;
      copies.run({
        sequences: [{ promptTokens: job.promptTokens, newTokens: job.maxTokens, maxNewTokens: job.maxTokens }],
        onDone: (run) => {
          outcome.finishedMs = run.finishedMs;
          outcome.completionTokens = job.maxTokens;
        },
      });
    }, outcome.job.atMs);
  }
  clock.run(options.untilMs);
  return { outcomes, endMs: endOf(outcomes, clock.now()), busyMsBySecond: copies.busyMsBySecond, tokensBySecond: copies.tokensBySecond, gpus: component.copies * component.accelerators_per_copy, batcherInvocations: 0 };
}

/** When the run ends, as the bench's does: at the last answer once every job has one, else when it stopped waiting. */
function endOf(outcomes: readonly SimOutcome[], stoppedMs: number): number {
  let last = 0;
  for (const o of outcomes) {
    if (o.finishedMs === undefined) return stoppedMs;
    last = Math.max(last, o.finishedMs);
  }
  return last;
}
