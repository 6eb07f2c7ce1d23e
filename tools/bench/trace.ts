// The trace generator lives in shared/sim: the tuning simulator and the predict endpoint use the same traces as the bench.
export * from "#shared/sim/trace";
