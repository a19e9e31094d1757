import { InvalidArgumentError } from 'commander';

/** A whole-number argument before the URL; its name is the key `run` receives its value under. */
export interface NumberArgument<Name extends string> {
  readonly name: Name;
  readonly description: string;
  readonly min: number;
}

export const MESSAGE_NUMBER: NumberArgument<'n'> = { name: 'n', description: 'message number, from 1', min: 1 };

/**
 * A commander parser for whole numbers from `min` up. Only digits pass: Number() would also take
 * "1e3", "0x10" and " 7 ", and a typo must not select another message to delete. Fifteen digits
 * at most, so that the value is exact.
 */
export function wholeNumber(min: number): (text: string) => number {
  return (text) => {
    if (!/^\d{1,15}$/.test(text) || Number(text) < min) {
      throw new InvalidArgumentError(`Expected a whole number from ${min} up.`);
    }
    return Number(text);
  };
}
