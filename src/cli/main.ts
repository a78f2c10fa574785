#!/usr/bin/env node
import { runProxy } from './proxy.ts';

/**
 * The `qmp-mux` command. Without a subcommand it runs the proxy; a first
 * argument naming a subcommand runs that instead, with the rest.
 */
const SUBCOMMANDS: Readonly<Record<string, (argv: string[]) => Promise<number>>> = {};

const argv = process.argv.slice(2);
const subcommand = argv[0] === undefined ? undefined : SUBCOMMANDS[argv[0]];
const run = subcommand ? subcommand(argv.slice(1)) : runProxy(argv);
run.then(
  (status) => process.exit(status),
  (err: unknown) => {
    process.stderr.write(`qmp-mux: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(70);
  },
);
