/** The local demo's sign-in page (templates/sign-in.hbs); production signs in on the platform. */
export interface SignInPage {
  title: string;
  /** Where to go once signed in: always a local path (api/session.ts `safeLocalPath`). */
  next: string;
  error: string | null;
  demo: boolean;
}

export function signInPage(next: string, error?: string, demo = false): SignInPage {
  return { title: 'Sign in', next, error: error ?? null, demo };
}
