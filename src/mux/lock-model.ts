import type { JsonObject } from '../json/value.ts';
import { Policy } from '../policy/policy.ts';
import { POLICY_PRESETS } from '../policy/presets.ts';
import type { LockMode } from '../qmp/extensions.ts';
import { describeWho, type Who } from './who.ts';

/*
 * What the monitor's lock is made of: what a client asks for, a lock held,
 * a client's place at it, the clock it runs on, and how it is told.
 */


/** Why a lock ended: its holder unlocked it, went silent past its lease or disconnected, QEMU went away, qmp-mux stopped. */
export const LOCK_ENDS = ['unlock', 'lease', 'disconnect', 'qemu-gone', 'stopping'] as const;
export type LockEnd = (typeof LOCK_ENDS)[number];
/** The ends after which nothing waiting for the lock will run. */
export type LockReset = 'qemu-gone' | 'stopping';

/**
 * A lease of a minute outlasts the pauses of a tool working through its
 * steps (the clock stops while a command of its is at QEMU), and gives a
 * monitor back within a minute of a tool that hangs; an hour bounds what a
 * tool that asks for more can keep from everyone else.
 */
export const LOCK_LEASE_MS = Object.freeze({ default: 60_000, max: 3_600_000 });
/** The longest a lock request may wait for the lock, ms. */
export const MAX_LOCK_WAIT_MS = 3_600_000;

/** Time, for the lock; injectable so that tests do not sleep. */
export interface LockClock {
  /** Monotonic time, ms. */
  now(): number;
  /** The wall clock, for what people read (`since`). */
  date(): Date;
  /** Calls `fn` after `ms`; returns what cancels it. */
  after(ms: number, fn: () => void): () => void;
}

export const SYSTEM_CLOCK: LockClock = {
  now: () => performance.now(),
  date: () => new Date(),
  after: (ms, fn) => {
    const timer = setTimeout(fn, ms);
    timer.unref();
    return () => clearTimeout(timer);
  },
};

/** What a client asks for with `__org.qmp-mux_lock`. */
export interface LockRequest {
  readonly mode: LockMode;
  /** How long to wait for a lock another client holds, ms; 0: not at all. */
  readonly waitMs: number;
  readonly leaseMs: number;
  readonly reason: string | undefined;
}

/** A lock, held, or being granted (its holder not yet answered). */
export interface Holding {
  readonly party: LockParty;
  readonly mode: LockMode;
  readonly reason: string | undefined;
  readonly leaseMs: number;
  /** When it began to hold others back (wall clock). */
  readonly since: Date;
  /** When its holder asked for it (monotonic). */
  readonly askedAt: number;
  /** When its holder was answered (monotonic); undefined while others' earlier commands are still being answered. */
  grantedAt: number | undefined;
  /** Answers its holder, once granted, when that could not be done at once. */
  answer: ((answer: LockAnswer) => void) | undefined;
  /** Answers its holder's unlock, once what it sent before has been answered. */
  unlocking: ((answer: UnlockAnswer) => void) | undefined;
}

export type LockAnswer = { readonly granted: Holding } | { readonly refused: string };
export type UnlockAnswer = { readonly ended: Holding } | { readonly refused: string };

/** What a client's command router hears from the lock. */
export interface PartyHooks {
  /** The lock ended: commands it held back may go now. */
  lockChanged(): void;
  /** The lock was reset (QEMU went away, qmp-mux is stopping): nothing waiting for it will run. */
  lockReset(why: LockReset): void;
  /** Commands waiting behind locks take less room now: the client may be read again. */
  room(): void;
}

/** One client's place at the lock. */
export class LockParty {
  /** Its commands at QEMU (queued in qmp-mux or not yet answered), and those of them that change state. */
  outstanding = 0;
  changing = 0;
  /** Its commands waiting behind a lock, and their bytes. */
  waitingCommands = 0;
  waitingBytes = 0;
  gone = false;
  /** How its last lock ended. */
  lastEnd: { readonly mode: LockMode; readonly why: LockEnd; readonly at: Date; readonly leaseMs: number } | undefined;

  /** @internal Made by `MonitorLock.join`. */
  constructor(
    readonly who: Who,
    readonly hooks: PartyHooks,
  ) {}
}

/** Hears what the lock does, for the log, the audit log and the metrics. */
export interface LockObserver {
  granted(holding: Holding, waitedMs: number): void;
  ended(holding: Holding, why: LockEnd, heldMs: number): void;
  /** A command, or a lock request, of `who` began to wait for a lock. */
  waited(who: Who): void;
}

/** What `query-proxy` and `query-lock` show of the lock. */
export interface LockSnapshot {
  readonly holding: Holding;
  /** How long its holder may stay silent before the lease runs out, ms. */
  readonly leaseLeftMs: number;
  /** Clients waiting for it, in the order they asked. */
  readonly waiting: readonly Who[];
  /** Commands of other clients waiting behind locks. */
  readonly waitingCommands: number;
}

const readOnly = new Policy(POLICY_PRESETS['read-only']);

/** Whether a command changes state: the read-only preset refuses it (what a write lock holds back). */
export function changesState(name: string, args: JsonObject | undefined): boolean {
  return readOnly.check(name, args) !== undefined;
}

/** `a write lock`, `an exclusive lock`. */
export function aLock(mode: LockMode): string {
  return mode === 'exclusive' ? 'an exclusive lock' : 'a write lock';
}

/** `client 3 on endpoint 'backup' has held a write lock since T (reason: R)`. */
export function describeHolding(h: Holding): string {
  return `${describeWho(h.party.who)} has held ${aLock(h.mode)} since ${h.since.toISOString()}${h.reason === undefined ? '' : ` (reason: ${h.reason})`}`;
}

