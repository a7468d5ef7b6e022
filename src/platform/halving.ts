/**
 * Runs one transaction for a whole group-committed batch of callers (reservations, vault
 * writes). When it fails it has rolled back whole, and one caller's item may be what failed it
 * (a trigger, a constraint, a value that cannot be stored): each half is attempted again on its
 * own, down to single items, so only the callers whose own attempt fails get the error. With
 * the database down that is at most 2n - 1 quick failures for n callers.
 *
 * `attempt` must have no effect when it throws; `settle` answers the callers of a part whose
 * attempt succeeded, `fail` one caller whose attempt alone failed.
 */
export async function attemptInHalves<T, R>(
  batch: readonly T[],
  attempt: (part: readonly T[]) => Promise<R>,
  settle: (part: readonly T[], result: R) => void,
  fail: (item: T, error: unknown) => void,
): Promise<void> {
  if (batch.length === 0) return;
  let result: R;
  try {
    result = await attempt(batch);
  } catch (error) {
    if (batch.length === 1) {
      fail(batch[0]!, error);
      return;
    }
    const half = Math.ceil(batch.length / 2);
    await attemptInHalves(batch.slice(0, half), attempt, settle, fail);
    await attemptInHalves(batch.slice(half), attempt, settle, fail);
    return;
  }
  settle(batch, result);
}
