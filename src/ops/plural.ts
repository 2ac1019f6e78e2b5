// Counts in messages: "1 task", "2 tasks", never "1 tasks".

/** `n` and the noun, singular for exactly 1; pass the plural when it is not the singular plus "s". */
export function plural(n: number, singular: string, pluralForm = `${singular}s`): string {
  return `${n} ${n === 1 ? singular : pluralForm}`;
}
