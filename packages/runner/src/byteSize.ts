const unitFactors: Record<string, number> = {
  '': 1,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  t: 1024 ** 4,
  p: 1024 ** 5,
};

// Docker's own grammar for --memory (go-units RAMInBytes): a number, an optional space, an
// optional unit letter, an optional "i" and an optional "b", in any case; units are binary.
const dockerByteSizePattern = /^(\d+(?:\.\d+)?) ?([kmgtp])?i?b?$/i;

/**
 * Parses a size the way `docker run --memory` does (`2g`, `256m`, `512MiB`, `1073741824`).
 * Returns undefined when the text is not such a size or is not a whole number of bytes.
 */
export function parseDockerByteSize(text: string): number | undefined {
  const match = dockerByteSizePattern.exec(text.trim());
  if (match === null) return undefined;
  const [, amount = '', unit = ''] = match;
  const bytes = Math.floor(Number(amount) * (unitFactors[unit.toLowerCase()] ?? Number.NaN));
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}
