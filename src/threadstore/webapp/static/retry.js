// Retrying a request that may not have reached the server, or that the server could not serve just then
// (network failure, 503, 429). Safe only for requests that say what they want, not what to add: a create or
// append with the same Idempotency-Key, a delta with the same offset, a PATCH to the same values.

const DELAYS_MS = [250, 500, 1000, 2000, 4000];

export function retryable(error) {
  return error?.network || error?.status === 503 || error?.status === 429;
}

export async function withRetries(action) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await action();
    } catch (error) {
      if (!retryable(error) || attempt >= DELAYS_MS.length) throw error;
      await new Promise((resolve) => setTimeout(resolve, DELAYS_MS[attempt]));
    }
  }
}
