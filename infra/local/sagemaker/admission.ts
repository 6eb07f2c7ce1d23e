export * from "#shared/sim/admission";
