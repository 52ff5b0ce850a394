// How an error names an option: as the command line spells it (`--force`,
// `--resume runs/a`) for `dptrain train`, or as the library's train() takes
// it (`force: true`, `resume: "runs/a"`), so that advice in a message is
// something the reader can type where they are.

export interface OptionNames {
  /** The option alone: `--auto-resume` or `autoResume`. */
  name(option: string): string;
  /** The option given, with its value (none: a switch): `--out runs/a` or `out: "runs/a"`, `--force` or `force: true`. */
  set(option: string, value?: string | number): string;
}

const kebab = (camel: string) => camel.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

export const CLI_OPTION_NAMES: OptionNames = {
  name: (option) => `--${kebab(option)}`,
  set: (option, value) => (value === undefined ? `--${kebab(option)}` : `--${kebab(option)} ${value}`),
};

export const API_OPTION_NAMES: OptionNames = {
  name: (option) => option,
  set: (option, value) => `${option}: ${value === undefined ? 'true' : JSON.stringify(value)}`,
};
