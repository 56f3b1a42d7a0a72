/**
 * Demo accounts for the local stack and the browser test: one per refusal rule
 * plus eligible ones. Seeding is idempotent and never resets an account that
 * already exists, so a restart keeps whatever the demo changed.
 */
import type { Db } from 'mongodb';
import { hashPassword } from '../passwords';
import { accountsOf, deploymentsOf, type AccountDoc, type DeploymentDoc } from './accounts';

export const DEMO_PASSWORD = 'demo-password';

type DemoAccount = Omit<AccountDoc, 'passwordHash' | 'createdAt'>;

export const DEMO_ACCOUNTS: readonly DemoAccount[] = [
  { _id: 'acct-alice', email: 'alice@example.com', name: 'Alice (eligible)', paymentMethod: 'none' },
  { _id: 'acct-bob', email: 'bob@example.com', name: 'Bob (eligible)', paymentMethod: 'none' },
  {
    _id: 'acct-carol',
    email: 'carol@example.com',
    name: 'Carol (credit card on file)',
    paymentMethod: 'credit-card',
    creditCard: { brand: 'Visa', last4: '4242' },
  },
  {
    _id: 'acct-dave',
    email: 'dave@example.com',
    name: 'Dave (Available Credits)',
    paymentMethod: 'available-credits',
    availableCredits: 250,
  },
  {
    _id: 'acct-erin',
    email: 'erin@example.com',
    name: 'Erin (already linked)',
    paymentMethod: 'aws-marketplace',
    marketplace: {
      awsAccountId: '999999999999',
      productCode: 'other-product',
      linkedAt: new Date('2026-01-01T00:00:00Z'),
    },
  },
];

function demoDeployments(accountId: string, now: Date): DeploymentDoc[] {
  return [
    {
      _id: `${accountId}-trial`,
      accountId,
      name: 'trial-broker',
      plan: 'trial',
      state: 'running',
      trialEndsAt: new Date(now.getTime() + 14 * 86_400_000),
      createdAt: now,
    },
    {
      _id: `${accountId}-prod`,
      accountId,
      name: 'production-broker',
      plan: 'standard',
      state: 'running',
      createdAt: now,
    },
  ];
}

export async function seedDemoAccounts(db: Db, now = new Date()): Promise<number> {
  const passwordHash = await hashPassword(DEMO_PASSWORD);
  let created = 0;
  for (const account of DEMO_ACCOUNTS) {
    const result = await accountsOf(db).updateOne(
      { _id: account._id },
      { $setOnInsert: { ...account, passwordHash, createdAt: now } },
      { upsert: true },
    );
    created += result.upsertedCount;
    for (const deployment of demoDeployments(account._id, now)) {
      await deploymentsOf(db).updateOne({ _id: deployment._id }, { $setOnInsert: deployment }, { upsert: true });
    }
  }
  return created;
}
