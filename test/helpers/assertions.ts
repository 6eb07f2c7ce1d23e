import { ValidationError } from "#shared/core/errors";

/** The ValidationError that `act` throws; fails the test if it throws nothing or something else. */
export function validationErrorOf(act: () => unknown): ValidationError {
  try {
    act();
  } catch (error) {
    if (error instanceof ValidationError) return error;
    throw error;
  }
  throw new Error("expected a ValidationError");
}
