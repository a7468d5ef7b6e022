#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by `npm run build` (npm start does it first).
import { main } from '../dist/app.js';

process.exitCode = await main(process.argv.slice(2));
