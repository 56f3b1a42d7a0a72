/** AWS Marketplace Metering calls, wrapped once for the worker and the registration webhook. */
import { ResolveCustomerCommand, type MarketplaceMeteringClient } from '@aws-sdk/client-marketplace-metering';
import { normalizeLicenseArn } from '../domain/subscription-identity';

export type RegistrationProblem = 'invalid-token' | 'expired-token' | 'api-disabled' | 'aws-unavailable';

/** Why a token could not be redeemed, in terms the buyer's page can explain. */
export class RegistrationError extends Error {
  constructor(
    readonly problem: RegistrationProblem,
    readonly awsErrorName: string,
  ) {
    super(`ResolveCustomer failed: ${awsErrorName}`);
    this.name = 'RegistrationError';
  }
}

const problemsByAwsError: Record<string, RegistrationProblem> = {
  InvalidTokenException: 'invalid-token',
  ExpiredTokenException: 'expired-token',
  DisabledApiException: 'api-disabled',
};

export interface ResolvedRegistration {
  awsAccountId: string;
  productCode: string;
  customerIdentifier?: string;
  licenseArn?: string;
}

export interface MarketplaceDeps {
  metering: MarketplaceMeteringClient;
}

export function createMarketplaceActivities({ metering }: MarketplaceDeps) {
  return {
    /**
     * Redeems a registration token. Throttling and internal errors are retried
     * by the client (exponential backoff with jitter, see lib/aws.ts); invalid
     * and expired tokens are never retried: only the buyer can get a new one.
     */
    resolveCustomer: async (registrationToken: string): Promise<ResolvedRegistration> => {
      try {
        const result = await metering.send(new ResolveCustomerCommand({ RegistrationToken: registrationToken }));
        if (!result.CustomerAWSAccountId || !result.ProductCode)
          throw new RegistrationError('aws-unavailable', 'IncompleteResponse');
        return {
          awsAccountId: result.CustomerAWSAccountId,
          productCode: result.ProductCode,
          ...(result.CustomerIdentifier ? { customerIdentifier: result.CustomerIdentifier } : {}),
          ...(result.LicenseArn ? { licenseArn: normalizeLicenseArn(result.LicenseArn) } : {}),
        };
      } catch (error) {
        if (error instanceof RegistrationError) throw error;
        const name = (error as { name?: string }).name ?? 'UnknownError';
        throw new RegistrationError(problemsByAwsError[name] ?? 'aws-unavailable', name);
      }
    },
  };
}
