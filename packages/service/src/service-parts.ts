import type { Logger } from 'pino';
import { AccountService } from './accounts/service.js';
import type { SecretBox } from './accounts/secrets.js';
import type { ServiceConfig } from './config.js';
import { WebhookDispatcher } from './delivery/webhook.js';
import type { Metrics } from './metrics.js';
import { AddressGuard } from './net/guard.js';
import type { Store } from './store/store.js';

/**
 * What `popwire serve` builds from its configuration over a store: the accounts and the webhook
 * outbox. The main thread and each sync worker (jobs/sync-worker.ts) build them here alike, so
 * that a sync in a worker connects, trusts and writes exactly as one in the main thread would.
 */
export function serviceParts(
  config: ServiceConfig,
  store: Store,
  box: SecretBox,
  ca: Buffer | undefined,
  logger: Logger,
  metrics?: Metrics,
): { accounts: AccountService; webhooks: WebhookDispatcher } {
  // Where callers of the API may make the service connect; the config's own webhook is trusted.
  const network = new AddressGuard({ allow: config.network.allow });
  const accounts = new AccountService(store, box, {
    ca,
    timeout: config.sync.timeout,
    deadline: config.sync.deadline * 1000,
    retry: { attempts: config.sync.connectAttempts },
    defaultInterval: config.sync.defaultInterval,
    defaultMaxSize: config.sync.maxSize,
    network,
    minInterval: config.sync.minInterval,
    destinations: {
      mdaAllow: config.destinations.mda.allow,
      maildirAllow: config.destinations.maildir.allow,
      socketAllow: config.destinations.lmtp.sockets,
      network,
      ca,
      timeoutMs: config.sync.timeout,
    },
  });
  const webhooks = new WebhookDispatcher(store, accounts, { defaultTarget: config.webhook, network, metrics, logger: logger.child({ part: 'webhooks' }) });
  return { accounts, webhooks };
}
