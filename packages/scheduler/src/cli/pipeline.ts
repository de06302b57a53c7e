#!/usr/bin/env node
import { runPipelineCommand } from './commands.ts';

// `pipeline help` lists the commands; each has its own `--help`.
process.exitCode = await runPipelineCommand(process.argv.slice(2), {
  env: process.env,
  stdout: process.stdout,
  stderr: process.stderr,
});
