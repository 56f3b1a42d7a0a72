/**
 * The index page (templates/index.hbs). With a link code in its address it
 * first asks the buyer to confirm, naming the AWS account that will pay, the
 * product and the platform account; only the Link button's click links. A
 * modal then shows the link to the AWS Billing Account and a pop-up the AWS
 * sync; both poll GET /api/links/current, which reads the store, so the page
 * works while Temporal is busy or down.
 */
import type { AccountDoc, DeploymentDoc } from '../../lib/store/accounts';
import { linkCodeErrors, spelledAwsAccountId, type LinkOffer } from '../common/link-codes';
import { INDEX_SCRIPT_PATH } from './index-script';

export interface IndexPage {
  title: string;
  accountName: string;
  deployments: Array<{ name: string; plan: string; trialEndsOn: string | null; state: string }>;
  /** Why the code in the address cannot be used: the modal opens on it at once, and the script leaves it alone. */
  linkProblem: string | null;
  confirmation: { awsAccountId: string; accountName: string; email: string; productCode: string } | null;
  scriptPath: string;
}

/** `link`: what the code in the page's address allows, if it carried one. */
export function indexPage(account: AccountDoc, deployments: DeploymentDoc[], link?: LinkOffer): IndexPage {
  return {
    title: 'Deployments',
    accountName: account.name,
    deployments: deployments.map((deployment) => ({
      name: deployment.name,
      plan: deployment.plan,
      trialEndsOn:
        deployment.plan === 'trial' && deployment.trialEndsAt
          ? deployment.trialEndsAt.toISOString().slice(0, 10)
          : null,
      state: deployment.state,
    })),
    linkProblem: link && 'problem' in link ? linkCodeErrors[link.problem].message : null,
    // Names only what AWS vouched for (ResolveCustomer's account and product) and the signed-in account. The offer
    // type comes from the form the browser posted, which anyone can write, so it is not shown: "free trial" must
    // not make a planted code look more convincing.
    confirmation:
      link && 'offer' in link
        ? {
            awsAccountId: spelledAwsAccountId(link.offer.awsAccountId),
            accountName: account.name,
            email: account.email,
            productCode: link.offer.productCode,
          }
        : null,
    scriptPath: INDEX_SCRIPT_PATH,
  };
}
