/** What the buyer sees when registration cannot go on (templates/registration-problem.hbs). */
export type RegistrationFailure =
  'invalid' | 'expired' | 'replayed' | 'unavailable' | 'busy' | 'rate-limited' | 'not-post';

const explanations: Record<RegistrationFailure, { title: string; text: string }> = {
  invalid: {
    title: 'This sign-up link is not valid',
    text: 'We could not confirm your AWS Marketplace subscription from this link.',
  },
  expired: {
    title: 'This sign-up link has expired',
    text: 'AWS Marketplace sign-up links are valid for a short time only.',
  },
  replayed: {
    title: 'This sign-up link was already used',
    text: 'It was used from another browser and cannot be used again.',
  },
  unavailable: {
    title: 'AWS Marketplace did not answer',
    text: 'We could not reach AWS Marketplace to confirm your subscription. Nothing was changed.',
  },
  busy: {
    title: 'Too many sign-ups are waiting',
    text: 'We are confirming many AWS Marketplace subscriptions right now. Nothing was changed; wait a few seconds.',
  },
  'rate-limited': {
    title: 'Too many attempts from your network',
    text: 'We received too many sign-up requests from your address in the last minute. Nothing was changed; wait a minute.',
  },
  'not-post': {
    title: 'Open this page from AWS Marketplace',
    text: 'This address receives your subscription from AWS Marketplace; it cannot be opened directly.',
  },
};

export interface RegistrationProblemPage {
  title: string;
  problem: RegistrationFailure;
  text: string;
}

/** The way forward is always the same: back to AWS Marketplace. */
export function registrationProblemPage(failure: RegistrationFailure): RegistrationProblemPage {
  return { ...explanations[failure], problem: failure };
}
