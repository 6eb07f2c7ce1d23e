/**
 * What the CLI's exit status means, so that a script can branch on it (README, "The command-line
 * tool"). A batch's outcome decides `submit`, `watch` and `results`.
 */
export const EXIT = {
  /** Done, and every line or job succeeded. */
  ok: 0,
  /** Done, and some lines failed (their errors are in the error file). */
  someFailed: 1,
  /** The command line itself is wrong: an unknown option, a missing argument, a bad profile. */
  usage: 2,
  /** The batch or job was cancelled. */
  cancelled: 3,
  /** The batch passed its completion window with lines unfinished. */
  expired: 4,
  /** The stack could not be reached. */
  unreachable: 5,
  /** The stack refused the request (4xx or 5xx): the message says why. */
  refused: 6,
  /** The batch failed as a whole (its input file did not validate), or the job failed. */
  failed: 7,
  /** `tune`: no candidate meets the latency objective (nothing applied). */
  unmet: 8,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error the CLI reports in one line and exits with its code. */
export class CliError extends Error {
  readonly exitCode: ExitCode;
  constructor(message: string, exitCode: ExitCode) {
    super(message);
    this.exitCode = exitCode;
  }
}

export type BatchOutcome = { readonly status: string; readonly request_counts?: { readonly failed?: number } | undefined };

/** The exit status a finished batch gives; undefined while it is not finished. */
export function exitCodeOfBatch(batch: BatchOutcome): ExitCode | undefined {
  switch (batch.status) {
    case "completed":
      return (batch.request_counts?.failed ?? 0) > 0 ? EXIT.someFailed : EXIT.ok;
    case "cancelled":
      return EXIT.cancelled;
    case "expired":
      return EXIT.expired;
    case "failed":
      return EXIT.failed;
    default:
      return undefined;
  }
}

/** The exit status of a finished job; undefined while it is not finished. */
export function exitCodeOfJob(status: string): ExitCode | undefined {
  return { SUCCEEDED: EXIT.ok, FAILED: EXIT.failed, CANCELLED: EXIT.cancelled, EXPIRED: EXIT.expired }[status];
}
