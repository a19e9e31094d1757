import type { Migration, MigrationProvider } from 'kysely';
import * as initial from './0001-initial.js';
import * as service from './0002-service.js';
import * as policyOwner from './0003-policy-owner-recipients.js';
import * as tokenScopes from './0004-token-scopes.js';
import * as credentialType from './0005-credential-type.js';
import * as destinations from './0006-destinations.js';
import * as messageStateSearch from './0007-message-state-search.js';
import * as pendingIndex from './0008-pending-index.js';

/**
 * Every migration, in order. Listed here rather than found on disk, so that the same set runs
 * from `dist/` and from the TypeScript sources, and a bundler cannot lose one. Names sort in the
 * order they run; a released migration is never edited, only followed by a new one.
 */
const migrations: Record<string, Migration> = {
  '0001-initial': initial,
  '0002-service': service,
  '0003-policy-owner-recipients': policyOwner,
  '0004-token-scopes': tokenScopes,
  '0005-credential-type': credentialType,
  '0006-destinations': destinations,
  '0007-message-state-search': messageStateSearch,
  '0008-pending-index': pendingIndex,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => migrations,
};
