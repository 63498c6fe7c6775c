#!/usr/bin/env node
// Ferry runs its TypeScript sources directly through tsx: no build step between a clone and `ferry serve`.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
