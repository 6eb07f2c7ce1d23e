import type { JobRecord } from "../core/jobs.ts";
import type { Component } from "../core/routes.ts";
import type { CopyCount, FleetView, JobStore } from "../ports.ts";
import { EndingJobStore } from "./ending-job-store.ts";

/**
 * What a function saw end, per route, for the EMF metrics CloudWatch's dashboard and alarms read
 * (docs/metrics.md): jobs that succeeded, errors by kind (the error code of a job that failed or
 * expired; a cancel is not an error), tokens generated, and each succeeded job's queue wait,
 * inference and end-to-end times. Also the copies each component was last seen to want, for the
 * "copies at max" alarm. The handler drains it once per invocation and publishes it.
 */
export type RouteOutcomes = {
  succeeded: number;
  errorsByKind: Record<string, number>;
  generatedTokens: number;
  queueWaitMs: number[];
  inferenceMs: number[];
  endToEndMs: number[];
};

export type OutcomeReport = { readonly routes: ReadonlyMap<string, RouteOutcomes>; readonly desiredCopies: ReadonlyMap<string, number> };

const between = (from: string | undefined, to: string | undefined) => (from === undefined || to === undefined ? undefined : Date.parse(to) - Date.parse(from));

export class JobOutcomeTally {
  #routes = new Map<string, RouteOutcomes>();
  #desiredCopies = new Map<string, number>();

  /** A job that just reached a terminal state (what a fenced finish or ending returned). */
  record(job: JobRecord): void {
    let route = this.#routes.get(job.model);
    if (!route) {
      route = { succeeded: 0, errorsByKind: {}, generatedTokens: 0, queueWaitMs: [], inferenceMs: [], endToEndMs: [] };
      this.#routes.set(job.model, route);
    }
    if (job.status === "SUCCEEDED") {
      route.succeeded++;
      route.generatedTokens += job.result?.completion_tokens ?? 0;
      const timings = [
        [route.queueWaitMs, between(job.created_at, job.started_at)],
        [route.inferenceMs, between(job.started_at, job.finished_at)],
        [route.endToEndMs, between(job.created_at, job.finished_at)],
      ] as const;
      for (const [values, ms] of timings) if (ms !== undefined && Number.isFinite(ms)) values.push(ms);
    } else if (job.status === "FAILED" || job.status === "EXPIRED") {
      const kind = job.error?.code ?? job.status.toLowerCase();
      route.errorsByKind[kind] = (route.errorsByKind[kind] ?? 0) + 1;
    }
  }

  copiesSeen(component: Component, copies: CopyCount): void {
    this.#desiredCopies.set(component.name, copies.desired);
  }

  /** What was recorded since the last drain; the tally starts empty again. */
  drain(): OutcomeReport {
    const report = { routes: this.#routes, desiredCopies: this.#desiredCopies };
    this.#routes = new Map();
    this.#desiredCopies = new Map();
    return report;
  }
}

/** A JobStore that tells the tally of every job it finishes or ends (a write another caller made first is not counted). */
export class OutcomeRecordingJobStore extends EndingJobStore {
  readonly #tally: JobOutcomeTally;

  constructor(jobs: JobStore, tally: JobOutcomeTally) {
    super(jobs);
    this.#tally = tally;
  }

  protected ended(job: JobRecord): void {
    this.#tally.record(job);
  }
}

/** A FleetView that tells the tally the copies each component wants, as the batcher reads them. */
export function copyRecordingFleet(fleet: FleetView, tally: JobOutcomeTally): FleetView {
  return {
    async copies(component) {
      const copies = await fleet.copies(component);
      tally.copiesSeen(component, copies);
      return copies;
    },
  };
}
