import { formatAddress, type Address } from '../net/address.ts';
import { copyPolicy } from '../policy/presets.ts';
import type { AddressText, EndpointConfig, MuxConfig, PolicyConfig, PolicyRuleConfig, SocketConfig, UpstreamConfig } from './config-types.ts';
import type { EndpointOptions, Options, PolicyOptions, PolicyRule, UpstreamOptions } from './options.ts';

/**
 * The options as a configuration file that gives exactly them, every
 * default filled in: what `--print-config` shows. Reading it back with
 * `--config` gives the same options.
 */
export function asConfigFile(options: Options): MuxConfig {
  return {
    upstream: upstream(options.upstream),
    // None but a takeover's, which the upstream makes (and its comment names).
    ...(options.endpoints.length > 0 && { endpoints: options.endpoints.map(endpoint) }),
    window: options.window,
    windowBytes: options.windowBytes,
    totalInputBytes: options.totalInputBytes,
    maxUpstreamMessage: options.maxUpstreamMessage,
    backoff: { ...options.backoff },
    timeouts: { ...options.timeouts },
    log: { ...options.log },
    journal: { ...options.journal },
    ...(options.audit && { audit: { ...options.audit, rotate: { ...options.audit.rotate } } }),
    ...(options.metrics && { metrics: { listen: tcpText(options.metrics.listen), allowRemote: options.metrics.allowRemote } }),
  };
}

function upstream(u: UpstreamOptions): UpstreamConfig {
  switch (u.mode) {
    case 'connect':
      if (!u.takeover) return { connect: addressText(u.address), takeover: false };
      return {
        connect: addressText(u.address),
        takeover: true,
        $comment: `clients also connect at ${formatAddress(u.address)}, QEMU's own path, taken over: the endpoint 'takeover', with the mode and owner of QEMU's socket and every default`,
      };
    case 'listen':
      return { listen: addressText(u.address) };
    case 'spawn':
      return { spawn: [...u.command], onStop: u.onStop, powerdownTimeoutMs: u.powerdownTimeoutMs };
  }
}

function endpoint(e: EndpointOptions): EndpointConfig {
  const out: EndpointConfig = { name: e.name, listen: addressText(e.address) };
  let where: Pick<EndpointConfig, 'socket' | 'allowRemote'>;
  if (e.address.type === 'unix') {
    const socket: SocketConfig = {
      mode: `0${e.socket.mode.toString(8).padStart(3, '0')}`,
      ...(e.socket.owner !== undefined && { owner: e.socket.owner }),
      ...(e.socket.group !== undefined && { group: e.socket.group }),
    };
    where = { socket };
  } else {
    where = { allowRemote: e.allowRemote };
  }
  return {
    ...out,
    ...where,
    policy: policy(e.policy),
    events: [...e.events],
    maxClients: e.maxClients,
    negotiationTimeoutMs: e.negotiationTimeoutMs,
    eventSequence: e.eventSequence,
    whenLocked: e.whenLocked,
    limits: { ...e.limits },
  };
}

/** The rules written out (presets spelled out), each a copy. */
function policy(p: PolicyOptions): PolicyConfig {
  const copy = copyPolicy(p);
  const rules = (list: PolicyRule[]): PolicyRuleConfig[] => list.map((r) => (typeof r === 'string' ? r : { command: r.command, arguments: r.arguments }));
  return { allow: rules(copy.allow), deny: rules(copy.deny) };
}

/** `formatAddress`, typed as the configuration's address text. */
function addressText(a: Address): AddressText {
  return a.type === 'unix' ? `unix:${a.path}` : tcpText(a);
}

function tcpText(a: Extract<Address, { type: 'tcp' }>): `tcp:${string}` {
  return `tcp:${formatAddress(a).slice('tcp:'.length)}`;
}
