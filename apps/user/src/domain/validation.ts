/** Normalisation of user input that the JSON schemas cannot express. */
export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

/** A pragmatic address check: one @, a dot in the domain, no spaces or control characters. */
export function isPlausibleEmail(email: string): boolean {
  return /^[^\s@\p{Cc}]{1,64}@[^\s@\p{Cc}]+\.[^\s@\p{Cc}]{2,}$/u.test(email) && email.length <= 254;
}
