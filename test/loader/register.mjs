// Runs TypeScript files in tests (tap's `node-arg`): `node --import ./test/loader/register.mjs file.ts`.
import { register } from 'node:module';

register('./hooks.mjs', import.meta.url);
