/** What the API returns, as far as the console reads it (the OpenAPI document at /openapi.json has all). */
export interface ServiceStatus {
  version: string;
  libraryVersion: string;
  node: string;
  startedAt: string;
  queueDepth: number;
  accounts: number;
  messages: number;
  runningSyncs: { accountId: number; name: string; until: string }[];
  token: { id: number; scopes: string[]; restricted: boolean };
}

export interface Account {
  id: number;
  name: string;
  host: string;
  port: number;
  tls: 'implicit' | 'starttls' | 'none';
  username: string;
  auth: string | null;
  credentialType: string | null;
  syncInterval: number | null;
  policy: { retention: 'leave' | 'delete' | 'keep'; keepDays: number | null; maxSize: number | null; oversize: 'skip' | 'headers' };
  webhookUrl: string | null;
  paused: boolean;
  needsAttention: boolean;
  statusNote: string | null;
  nextSyncAt: string | null;
  tlsInsecure: boolean;
  allowPlaintextAuth: boolean;
}

export interface AccountStatus {
  id: number;
  state: 'ok' | 'failing' | 'needs attention' | 'paused' | 'new';
  lastRun: { id: number; status: string; startedAt: string; finishedAt: string | null; newMessages: number; errorCode: string | null; errorMessage: string | null } | null;
  nextSyncAt: string | null;
  messageCount: number;
  syncing: boolean;
  lastError: string | null;
}

export interface Run {
  id: number;
  status: string;
  startedAt: string;
  finishedAt: string | null;
  newMessages: number;
  alreadyHad: number;
  deleted: number;
  skipped: number;
  bytes: number;
  error: { code: string | null; message: string | null } | null;
}

export interface TestStep {
  step: string;
  ok: boolean;
  ms: number;
  detail?: string;
  mechanism?: string;
  certificate?: { subject: string; issuer: string; validTo: string; daysLeft: number };
  error?: { code: string; message: string };
}

export interface TestReport {
  ok: boolean;
  host: string;
  port: number;
  steps: TestStep[];
  failedStep?: string;
  error?: { code: string; message: string };
}

export interface Mailbox {
  name: string;
  address: string;
}

export interface MessageSummary {
  id: number;
  accountId: number;
  size: number;
  date: string | null;
  from: Mailbox | null;
  to: Mailbox[];
  subject: string | null;
  hasAttachments: boolean;
  headersOnly: boolean;
  storedAt: string;
  seen: boolean;
  flagged: boolean;
  deletedAt?: string | null;
}

export interface MessagePage {
  messages: MessageSummary[];
  next: string | null;
}

export interface ParsedMessage {
  id: number;
  accountId: number;
  subject: string | null;
  date: string | null;
  from: Mailbox | null;
  headers: { name: string; value: string }[];
  text: string | null;
  html: string | null;
  attachments: { n: number; filename: string | null; contentType: string; size: number }[];
  warnings: string[];
  seen: boolean;
  flagged: boolean;
  deletedAt: string | null;
}

export interface WebhookEvent {
  id: number;
  accountId: number | null;
  url: string;
  type: string;
  state: 'pending' | 'failing' | 'gave-up' | 'delivered';
  attempts: number;
  nextAttemptAt: string | null;
  deliveredAt: string | null;
  lastError: string | null;
}

export interface TokenInfo {
  id: number;
  name: string;
  scopes: string[];
  accounts: 'all' | { id: number; key: string }[];
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
}
