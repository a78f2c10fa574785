import { formatAddress } from '../net/address.ts';
import { copyPolicy } from '../policy/presets.ts';
import type { EndpointOptions, Options, UpstreamOptions } from './options.ts';

/**
 * The options as a configuration file that gives exactly them, every
 * default filled in: what `--print-config` shows. Reading it back with
 * `--config` gives the same options.
 */
export function asConfigFile(options: Options): Record<string, unknown> {
  return {
    upstream: upstream(options.upstream),
    endpoints: options.endpoints.map(endpoint),
    window: options.window,
    windowBytes: options.windowBytes,
    totalInputBytes: options.totalInputBytes,
    maxUpstreamMessage: options.maxUpstreamMessage,
    backoff: { ...options.backoff },
    timeouts: { ...options.timeouts },
    log: { ...options.log },
    journal: { ...options.journal },
    ...(options.audit && { audit: { ...options.audit, rotate: { ...options.audit.rotate } } }),
    ...(options.metrics && { metrics: { listen: formatAddress(options.metrics.listen), allowRemote: options.metrics.allowRemote } }),
  };
}

function upstream(u: UpstreamOptions): Record<string, unknown> {
  switch (u.mode) {
    case 'connect':
      return { connect: formatAddress(u.address), takeover: u.takeover };
    case 'listen':
      return { listen: formatAddress(u.address) };
    case 'spawn':
      return { spawn: [...u.command], onStop: u.onStop, powerdownTimeoutMs: u.powerdownTimeoutMs };
  }
}

function endpoint(e: EndpointOptions): Record<string, unknown> {
  const out: Record<string, unknown> = { name: e.name, listen: formatAddress(e.address) };
  if (e.address.type === 'unix') {
    const socket: Record<string, unknown> = { mode: `0${e.socket.mode.toString(8).padStart(3, '0')}` };
    if (e.socket.owner !== undefined) socket.owner = e.socket.owner;
    if (e.socket.group !== undefined) socket.group = e.socket.group;
    out.socket = socket;
  } else {
    out.allowRemote = e.allowRemote;
  }
  return {
    ...out,
    policy: copyPolicy(e.policy),
    events: [...e.events],
    maxClients: e.maxClients,
    negotiationTimeoutMs: e.negotiationTimeoutMs,
    eventSequence: e.eventSequence,
    whenLocked: e.whenLocked,
    limits: { ...e.limits },
  };
}
