import { LOG_LEVELS, type LogFormat, type LogLevel } from '../log.ts';
import { AddressError, UsageError } from '../errors.ts';
import { parseAddress, type Address } from '../net/address.ts';

/** What the command line asked for; anything not given is left to the defaults. */
export interface CommandLine {
  help: boolean;
  version: boolean;
  upstream?: Address;
  listen: Address[];
  /** QEMU command line after `--`: spawn mode. */
  qemu?: string[];
  logLevel?: LogLevel;
  logFormat?: LogFormat;
  trace: boolean;
}

export const USAGE = `Usage: qmp-mux [options] [-- QEMU-COMMAND [ARGS...]]

Shares one QEMU QMP monitor among many clients.

Upstream (one of):
  --upstream unix:PATH | tcp:HOST:PORT   connect to QEMU's QMP server socket
  -- qemu-system-x86_64 ARGS...          start QEMU with a private QMP socket
  (neither)                              start a throwaway QEMU:
                                         qemu-system-x86_64 -machine none -nodefaults -display none

Clients:
  --listen unix:PATH | tcp:HOST:PORT     where clients connect (repeatable);
                                         default unix:qmp-mux.sock

Logging:
  --log-level error|warn|info|debug      default info
  --log-format text|json                 default text
  --trace                                log every message, with client and direction

  --help                                 show this help
  --version                              show the version
`;

/** Parses argv (without node and the script). Throws UsageError naming the bad argument. */
export function parseArgs(argv: readonly string[]): CommandLine {
  const out: CommandLine = { help: false, version: false, listen: [], trace: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    const inline = arg.startsWith('--') && eq > 0 ? arg.slice(eq + 1) : undefined;
    const value = (): string => {
      if (inline !== undefined) return inline;
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${name} needs a value`);
      return v;
    };
    const address = (): Address => {
      try {
        return parseAddress(value());
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
      case '--upstream':
        if (out.upstream) throw new UsageError('--upstream given twice');
        out.upstream = address();
        break;
      case '--listen':
        out.listen.push(address());
        break;
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
      default:
        throw new UsageError(`unknown argument '${arg}'`);
    }
  }
  if (out.upstream && out.qemu) throw new UsageError('give either --upstream or a QEMU command after --, not both');
  return out;
}
