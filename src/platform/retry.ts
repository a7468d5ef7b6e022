/**
 * Runs `attempt` again, at most `retries` more times, while it fails with an error `again`
 * accepts; any other error, or the last one, is thrown. For attempts that learn why they
 * failed (a rolled-back transaction whose tokens an erasure retired, D26) rather than waiting
 * for a transient fault to pass: no delay between them.
 */
export async function retryWhile<T>(
  attempt: () => Promise<T>,
  again: (error: unknown) => boolean,
  retries: number,
): Promise<T> {
  for (let round = 0; ; round++) {
    try {
      return await attempt();
    } catch (error) {
      if (round >= retries || !again(error)) throw error;
    }
  }
}
