import { getHeapStatistics } from 'node:v8';
import type { Env } from './env.validation';

/** MAX_MEMORY_MB in bytes, or 75% of V8's heap limit when unset. */
export function heapBudgetBytes(maxMemoryMb: Env['MAX_MEMORY_MB']): number {
  return maxMemoryMb !== undefined
    ? maxMemoryMb * 1024 * 1024
    : Math.floor(getHeapStatistics().heap_size_limit * 0.75);
}
