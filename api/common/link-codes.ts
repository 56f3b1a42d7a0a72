/**
 * Whether a link code may be offered or used in this browser. The index page
 * (which asks the buyer to confirm) and the link routes (which act on the
 * answer) apply the same rules, so the page never offers what the click
 * would refuse.
 */
import type { Db } from 'mongodb';
import { sha256 } from '../../lib/secrets';
import { linkCodesOf, linkCodeUsesOf, type LinkCodeDoc } from '../../lib/store/registrations';

export const LINK_CODE_PATTERN = '^[A-Za-z0-9_-]{43}$';

export type LinkCodeProblem = 'unknown' | 'notYours' | 'expired' | 'used' | 'declined';

export const linkCodeErrors: Record<LinkCodeProblem | 'unavailable', { error: string; message: string }> = {
  unknown: {
    error: 'UnknownLinkCode',
    message: 'This link code is not known. Go back to AWS Marketplace and click Set Up Your Account again.',
  },
  expired: {
    error: 'LinkCodeExpired',
    message: 'This link code has expired. Go back to AWS Marketplace and click Set Up Your Account again.',
  },
  notYours: {
    error: 'LinkCodeNotYours',
    message: 'This link code was issued to another browser or user and cannot be used here.',
  },
  used: {
    error: 'LinkCodeUsed',
    message: 'This link code was already used. Your link status is shown on the index page.',
  },
  declined: {
    error: 'LinkCodeDeclined',
    message:
      'You cancelled this link, and nothing was linked. To link after all, go back to AWS Marketplace and click Set Up Your Account again.',
  },
  unavailable: {
    error: 'LinkingUnavailable',
    message:
      'Linking is briefly unavailable. Your request may still be in progress; retry in a few seconds to see the result.',
  },
};

/** The code's record if this browser holds its binding cookie and it has not expired; claims are checked by the caller. */
export async function findBoundLinkCode(
  db: Db,
  linkCode: string,
  bindingCookie: string | undefined,
): Promise<{ code: LinkCodeDoc } | { problem: 'unknown' | 'notYours' | 'expired' }> {
  if (!new RegExp(LINK_CODE_PATTERN).test(linkCode)) return { problem: 'unknown' };
  const code = await linkCodesOf(db).findOne({ _id: sha256(linkCode) });
  if (!code) return { problem: 'unknown' };
  if (!bindingCookie || sha256(bindingCookie) !== code.bindingHash) return { problem: 'notYours' };
  if (code.expiresAt.getTime() <= Date.now()) return { problem: 'expired' };
  return { code };
}

export type LinkOffer = { offer: LinkCodeDoc } | { problem: LinkCodeProblem } | { requested: true };

/**
 * What the index page does with a code in its address: offer the link for
 * confirmation, explain why it cannot, or (the account already clicked Link)
 * just follow the request's status.
 */
export async function linkOfferFor(
  db: Db,
  linkCode: string,
  bindingCookie: string | undefined,
  accountId: string,
): Promise<LinkOffer> {
  const found = await findBoundLinkCode(db, linkCode, bindingCookie);
  if ('problem' in found) return found;
  const use = await linkCodeUsesOf(db).findOne({ _id: found.code._id });
  if (!use) return { offer: found.code };
  if (use.accountId !== accountId) return { problem: 'notYours' };
  return use.declinedAt ? { problem: 'declined' } : { requested: true };
}

/** How the AWS console spells an account id: 1234-5678-9012. */
export function spelledAwsAccountId(awsAccountId: string): string {
  return awsAccountId.replace(/^(\d{4})(\d{4})(\d{4})$/, '$1-$2-$3');
}
