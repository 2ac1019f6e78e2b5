// Seeded pseudo-random numbers, so that every fault decision of the local Lambda runtime can be replayed.
// mulberry32: tiny, fast and good enough to decide coin flips; not for cryptography.

/** A source of uniform numbers in [0, 1). */
export interface Random {
  next(): number;
}

/** A mulberry32 generator seeded with a 32-bit integer. */
export function mulberry32(seed: number): Random {
  let state = seed >>> 0;
  return {
    next(): number {
      state = (state + 0x6d2b79f5) >>> 0;
      let t = state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    },
  };
}

/** FNV-1a hash of a string, as an unsigned 32-bit integer. */
export function hashString(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** One independent stream per (seed, name): the same seed and function name always give the same stream. */
export function randomFor(seed: number, name: string): Random {
  return mulberry32((hashString(name) ^ Math.imul(seed >>> 0, 0x9e3779b1)) >>> 0);
}

/** A uniform integer in [min, max], both included. `u` is a draw in [0, 1). */
export function uniformInt(u: number, range: { min: number; max: number }): number {
  const low = Math.ceil(range.min);
  const high = Math.floor(range.max);
  if (high <= low) return low;
  return low + Math.floor(u * (high - low + 1));
}
