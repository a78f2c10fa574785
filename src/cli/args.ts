import { metricsAddress } from '../config/ops-fields.ts';
import type { CommandLine } from '../config/resolve.ts';
import { AddressError, UsageError } from '../errors.ts';
import { LOG_LEVELS, type LogLevel } from '../log.ts';
import { parseAddress, type Address } from '../net/address.ts';

export type { CommandLine } from '../config/resolve.ts';

export const USAGE = `Usage: qmp-mux [options] [-- QEMU-COMMAND [ARGS...]]
       qmp-mux exec|events|shell|wait-ready [options] ...
                                        (QMP clients; see qmp-mux exec --help)

Shares one QEMU QMP monitor among many clients.

Upstream (one of; the command line overrides the config file):
  --upstream unix:PATH | tcp:HOST:PORT   connect to QEMU's QMP server socket
  --upstream listen:unix:PATH | listen:tcp:HOST:PORT
                                         listen; QEMU connects (-chardev socket,...,reconnect=1)
  -- qemu-system-x86_64 ARGS...          start QEMU with a private QMP socket
  (neither)                              start a throwaway QEMU:
                                         qemu-system-x86_64 -machine none -nodefaults -display none
  --takeover                             with --upstream unix:PATH: move QEMU's socket aside
                                         and serve clients at PATH (instead of the default
                                         endpoint)
  --on-stop quit|powerdown|leave         what stopping qmp-mux (SIGTERM, SIGINT, SIGHUP)
                                         does to a QEMU it started (spawn only; default quit)
  --powerdown-timeout MS                 with --on-stop powerdown: time before quit (default 30000)

Clients:
  --listen unix:PATH | tcp:HOST:PORT     where clients connect (repeatable; added to the
                                         config file's endpoints); default unix:qmp-mux.sock

Configuration:
  --config PATH                          JSON configuration file (see config/example.json)
  --check-config                         check the configuration, and that this machine
                                         lets qmp-mux do what it asks, then exit
  --print-config                         print the effective configuration (file, flags and
                                         defaults) as a configuration file, and exit

Operating:
  --metrics tcp:HOST:PORT                serve /metrics, /healthz, /readyz and /status over HTTP
                                         (loopback only unless the config file allows remote)

Logging:
  --log-level error|warn|info|debug      default info
  --log-format text|json                 default text
  --trace                                log every message, with client and direction

  --help                                 show this help
  --version                              show the version
`;

/** Parses argv (without node and the script). Throws UsageError naming the bad argument. */
export function parseArgs(argv: readonly string[]): CommandLine {
  const out: CommandLine = { help: false, version: false, checkConfig: false, printConfig: false, takeover: false, listen: [], trace: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const long = arg.startsWith('--') && eq > 0;
    const name = long ? arg.slice(0, eq) : arg;
    const inline = long ? arg.slice(eq + 1) : undefined;
    const value = (): string => {
      if (inline !== undefined) return inline;
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${name} needs a value`);
      return v;
    };
    const address = (text: string): Address => {
      try {
        return parseAddress(text);
      } catch (e) {
        if (e instanceof AddressError) throw new UsageError(`${name}: ${e.message}`);
        throw e;
      }
    };
    switch (name) {
      case '--':
        out.qemu = argv.slice(i + 1);
        if (out.qemu.length === 0) throw new UsageError('-- must be followed by a QEMU command');
        i = argv.length;
        break;
      case '-h':
      case '--help':
        out.help = true;
        break;
      case '-V':
      case '--version':
        out.version = true;
        break;
      case '--config':
        out.config = value();
        break;
      case '--check-config':
        out.checkConfig = true;
        break;
      case '--print-config':
        out.printConfig = true;
        break;
      case '--upstream': {
        if (out.upstream) throw new UsageError('--upstream given twice');
        const text = value();
        out.upstream = text.startsWith('listen:') ? { mode: 'listen', address: address(text.slice(7)) } : { mode: 'connect', address: address(text) };
        break;
      }
      case '--takeover':
        out.takeover = true;
        break;
      case '--listen':
        out.listen.push(address(value()));
        break;
      case '--on-stop': {
        const policy = value();
        if (policy !== 'quit' && policy !== 'powerdown' && policy !== 'leave') throw new UsageError(`--on-stop: '${policy}' is not quit, powerdown or leave`);
        out.onStop = policy;
        break;
      }
      case '--powerdown-timeout': {
        const ms = Number(value());
        if (!Number.isInteger(ms) || ms < 0) throw new UsageError('--powerdown-timeout: expected a number of milliseconds');
        out.powerdownTimeoutMs = ms;
        break;
      }
      case '--log-level': {
        const level = value();
        if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new UsageError(`--log-level: '${level}' is not one of ${LOG_LEVELS.join(', ')}`);
        out.logLevel = level as LogLevel;
        break;
      }
      case '--log-format': {
        const format = value();
        if (format !== 'text' && format !== 'json') throw new UsageError(`--log-format: '${format}' is not text or json`);
        out.logFormat = format;
        break;
      }
      case '--trace':
        out.trace = true;
        break;
      case '--metrics': {
        const text = value();
        try {
          out.metrics = metricsAddress(text);
        } catch (e) {
          if (e instanceof AddressError) throw new UsageError(`--metrics: ${e.message}`);
          throw e;
        }
        break;
      }
      default:
        throw new UsageError(`unknown argument '${arg}'`);
    }
  }
  if (out.upstream && out.qemu) throw new UsageError('give either --upstream or a QEMU command after --, not both');
  return out;
}
