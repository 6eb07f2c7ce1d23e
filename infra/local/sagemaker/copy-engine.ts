// The engine model lives in shared/sim, so that the tuning simulator (and the predict endpoint's Lambda) runs the very same code on a virtual clock.
export * from "#shared/sim/copy-engine";
