import { modifiedUtf8 } from './utf8.ts';

/**
 * QEMU keeps JSON objects in a QDict, a 512-bucket hash table, and walks it
 * bucket by bucket, newest entry first within a bucket. That walk decides
 * both the member order of everything QEMU writes and which of several bad
 * members of a request it complains about first, so qmp-mux reproduces it.
 */
const BUCKETS = 512;

function tdbHash(key: string): number {
  const bytes = modifiedUtf8(key);
  let value = Math.imul(0x238f13af, bytes.length) >>> 0;
  for (let i = 0; i < bytes.length; i++) {
    value = (value + (bytes[i]! << ((i * 5) % 24))) >>> 0;
  }
  return (Math.imul(1103515243, value) + 12345) >>> 0;
}

const bucketCache = new Map<string, number>();

function bucketOf(key: string): number {
  let b = bucketCache.get(key);
  if (b === undefined) {
    b = tdbHash(key) % BUCKETS;
    if (bucketCache.size < 4096) bucketCache.set(key, b);
  }
  return b;
}

/** The keys of an object, inserted in the given order, in the order QEMU iterates them. */
export function qdictOrder(keys: readonly string[]): string[] {
  if (keys.length < 2) return keys.slice();
  const decorated = keys.map((key, insertion) => ({ key, insertion, bucket: bucketOf(key) }));
  decorated.sort((a, b) => a.bucket - b.bucket || b.insertion - a.insertion);
  return decorated.map((d) => d.key);
}
