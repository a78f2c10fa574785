import { readdirSync, readFileSync } from 'node:fs';

/**
 * The process's limit on open file descriptors (its soft limit), as Linux
 * reports it; Infinity where it cannot be read.
 */
export function descriptorLimit(): number {
  try {
    const line = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'latin1'));
    return line && line[1] !== 'unlimited' ? Number(line[1]) : Infinity;
  } catch {
    return Infinity;
  }
}

/** File descriptors the process has open now; 0 where it cannot be told. */
export function descriptorsOpen(): number {
  try {
    // Less the one that reads the directory, open only meanwhile.
    return readdirSync('/proc/self/fd').length - 1;
  } catch {
    return 0;
  }
}
