// How the command line ends when something goes wrong: one line
// `dptrain: error [CODE]: message` on stderr, exit code 2 for a usage error
// (DPT_ERR_USAGE) and 1 for every other error. commander's own parse errors
// (unknown option, bad option value, missing argument) are usage errors too
// and are turned into the same line here, so a user sees one format.
import type { Command, CommanderError } from 'commander';
import { DptrainError, type ErrorCode } from '../../src/errors.js';

export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export function exitCodeOf(code: ErrorCode): number {
  return code === 'DPT_ERR_USAGE' ? EXIT_USAGE : EXIT_FAILURE;
}

export function errorLine(err: DptrainError): string {
  return `dptrain: error [${err.code}]: ${err.message}`;
}

export function warningLine(message: string): string {
  return `dptrain: warning: ${message}`;
}

/**
 * What a CommanderError means for the user: help they asked for (exit 0,
 * commander printed it), or a usage error in our format that points at the
 * --help of the command given in `argv` (`dptrain train --help`).
 */
export function fromCommanderError(err: CommanderError, program: Command, argv: readonly string[]): { exitCode: 0 } | { error: DptrainError } {
  const command = program.commands.find((c) => c.name() === argv[2]);
  const helpHint = command === undefined ? `${program.name()} --help` : `${program.name()} ${command.name()} --help`;
  switch (err.code) {
    case 'commander.helpDisplayed':
    case 'commander.version':
      return { exitCode: 0 };
    case 'commander.help': {
      // `dptrain help` (asked, exit code 0), or no command at all (commander printed the help to stderr).
      if (err.exitCode === 0) return { exitCode: 0 };
      const names = program.commands.map((c) => c.name()).filter((n) => n !== 'help');
      return { error: new DptrainError('DPT_ERR_USAGE', `no command given: use one of ${names.join(', ')}; see ${helpHint}`) };
    }
    case 'commander.invalidArgument':
      // "error: option '--epochs <n>' argument 'x' is invalid. --epochs must be ...": our parser's message names the option.
      return { error: new DptrainError('DPT_ERR_USAGE', oneLine(err.message.replace(/^error: option '[^']*' argument '[^']*' is invalid\. /, ''))) };
    default:
      return { error: new DptrainError('DPT_ERR_USAGE', `${oneLine(err.message)}; see ${helpHint}`) };
  }
}

function oneLine(message: string): string {
  return message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ').trim().replace(/\.$/, '');
}
