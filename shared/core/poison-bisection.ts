/**
 * A static batch (one call, many prompts) that the model rejects as a whole for one bad prompt
 * (a 400 for a malformed or too-long input, wrapped in a 424) is split in halves, both halves
 * sent at once, until each rejected part is one prompt: that prompt fails alone, the others
 * succeed. One bad prompt of n costs 2·log2(n) + 1 calls and log2(n) + 1 rounds, not n + 1 calls;
 * each of b bad prompts at most 2·log2(n) more. Any other failure (throttling, 5xx, a timeout)
 * fails the part it met as it is, for the retry policy to deal with: splitting would only
 * multiply the calls that meet it.
 *
 * @param call sends one batch; resolves with an output per input, in order.
 * @param rejectsWhole whether an error is the model refusing the batch's content.
 *
 * @example
 * // 1 bad prompt of 64: 13 calls (the batch, then both halves of each rejected part, 6 levels)
 * await settleByHalves(prompts, send, (e) => e instanceof ModelRejectedError)
 */
export async function settleByHalves<I, O>(
  inputs: readonly I[],
  call: (inputs: readonly I[]) => Promise<readonly O[]>,
  rejectsWhole: (error: unknown) => boolean,
): Promise<PromiseSettledResult<O>[]> {
  if (inputs.length === 0) return [];
  try {
    const outputs = await call(inputs);
    return outputs.map((value) => ({ status: "fulfilled", value }));
  } catch (error) {
    if (inputs.length === 1 || !rejectsWhole(error)) return inputs.map(() => ({ status: "rejected", reason: error }));
    const middle = Math.ceil(inputs.length / 2);
    const halves = await Promise.all([settleByHalves(inputs.slice(0, middle), call, rejectsWhole), settleByHalves(inputs.slice(middle), call, rejectsWhole)]);
    return halves.flat();
  }
}
