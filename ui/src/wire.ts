// Generated from crates/kaunter-protocol by `KAUNTER_BLESS=1 cargo test -p kaunter-protocol`.
// Do not edit by hand: the test fails when this file and the Rust types disagree.

export type IdType = "mykad" | "passport" | "army_police" | "old_ic";

export type Sex = "male" | "female";

export type FieldError = { 
/**
 * The form field's name, e.g. `id_number`.
 */
field: string, 
/**
 * A stable machine code, e.g. `mykad_bad_place_of_birth`.
 */
code: string, 
/**
 * A sentence for the person at the desk.
 */
message: string, };

export type PatientRecord = { id: string, branch_id: string, full_name: string, id_type: IdType, 
/**
 * Normalised: digits only for MyKad, upper-case without spaces otherwise.
 */
id_number: string, 
/**
 * E.164, e.g. `+60123456789`.
 */
phone: string | null, date_of_birth: string | null, sex: Sex | null, };

export type Entity = "patient" | "appointment" | "cash_movement" | "catalogue_item" | "clinical_entry";

export type AppointmentStatus = "booked" | "arrived" | "completed" | "cancelled" | "no_show";

export type AppointmentRecord = { id: string, branch_id: string, patient_id: string, 
/**
 * The staff member seen; the staff catalogue is tenant-wide.
 */
practitioner_id: string, starts_at: string, ends_at: string, status: AppointmentStatus, 
/**
 * Why the patient comes: clinical, so encrypted on the desk.
 */
note: string | null, };

export type CashKind = "payment" | "refund" | "float_in" | "pay_out";

export type CashMovementRecord = { id: string, branch_id: string, kind: CashKind, 
/**
 * Ringgit, positive, exactly two decimals on the wire: `"12.30"`.
 */
amount: string, patient_id: string | null, note: string | null, };

export type CatalogueKind = "product" | "service";

export type TaxCode = "exempt" | "service_6" | "service_8";

export type CatalogueItemRecord = { id: string, branch_id: string, kind: CatalogueKind, 
/**
 * The business's own code (SKU, service code): what staff type or scan.
 */
code: string, name: string, 
/**
 * Ringgit before tax, two decimals on the wire: `"45.00"`. Zero is allowed (a free item).
 */
price: string, tax: TaxCode, 
/**
 * How long a service takes to book, in minutes; none for a product.
 */
duration_minutes: number | null, 
/**
 * An inactive item stays in the catalogue (old sales name it) but is no longer offered.
 */
active: boolean, };

export type ClinicalKind = "note" | "allergy" | "emergency_access";

export type ClinicalEntryRecord = { id: string, branch_id: string, patient_id: string, kind: ClinicalKind, 
/**
 * The note or allergy; for an emergency access, the reason given.
 */
body: string, 
/**
 * Who wrote it: the person signed in at the desk (none at a desk nobody signs in to).
 */
author_id: string | null, };

export type PullScope = "branch" | "business";

export type WireStamp = { hlc: string, device_id: string, };

export type Change = { entity: Entity, row_id: string, branch_id: string, stamp: WireStamp, fields: Record<string, unknown>, 
/**
 * When the desk recorded it, by the desk's wall clock: informative only, never used to
 * order anything.
 */
recorded_at: string, };

export type OutboxEntry = { seq: bigint, schema_version: number, change: Change, 
/**
 * The person signed in at the desk when it was written (a user of the business), if the
 * desk asks its staff to sign in.
 */
actor?: string | null, 
/**
 * Who approved it at the desk with their own PIN, when the person signed in may not do it
 * alone (a STAFF member's refund, approved by a manager).
 */
approver?: string | null, };

export type PushRequest = { schema_version: number, 
/**
 * Consecutive sequence numbers. Entries at or below the device's high-water mark are
 * replays and change nothing; the first new entry must be exactly high-water + 1.
 */
entries: Array<OutboxEntry>, };

export type RejectedEntry = { seq: bigint, 
/**
 * Stable code, e.g. `validation_failed`, `row_in_other_branch`, `clock_ahead`.
 */
code: string, message: string, fields?: Array<FieldError>, };

export type PushResponse = { 
/**
 * The device's high-water mark after this push, committed: every entry up to it is handled.
 */
acked_seq: bigint, 
/**
 * The entries of this batch (replayed ones included) that were refused.
 */
rejected: Array<RejectedEntry>, };

export type PulledChange = { 
/**
 * The tenant-wide sequence number of the row's last change; pull again with it as the
 * cursor.
 */
cursor: bigint, change: Change, 
/**
 * On the first change of a row: when the row was first written, for a desk that does not
 * have it yet. Sent to desks of schema 3 and later only.
 */
created_at?: string | null, };

export type Checkpoint = { cursor: bigint, 
/**
 * 16 hex digits.
 */
digest: string, };

export type PullResponse = { changes: Array<PulledChange>, 
/**
 * The cursor to send next time: the last change's cursor, or the request's when empty.
 */
next_cursor: bigint, has_more: boolean, 
/**
 * Conflicts of this device's branch waiting for a person (see `GET /v1/conflicts`).
 */
open_conflicts: number, 
/**
 * When asked for (`count=true`): how many rows of the branch changed after the cursor,
 * this page's included, for a progress bar.
 */
remaining: bigint | null, 
/**
 * On the last page: the branch's state as of `next_cursor`, for the desk to compare with
 * its own once it has nothing waiting to push.
 */
checkpoint: Checkpoint | null, 
/**
 * The business's tombstone horizon: deleted rows whose last change is at or below it are
 * gone from the server for good. A desk holding such a tombstone drops it on the last page
 * of a pull; a desk whose cursor is below it must resync from 0 (`resync_required`).
 * Sent to desks of schema 3 and later only (older desks reject fields they do not know).
 */
purged_seq?: bigint | null, };

export type ConflictKind = "duplicate_id_number" | "appointment_overlap";

export type Resolution = "keep_both" | "keep_a" | "keep_b" | "merge_into_a";

export type ConflictView = { conflict_id: string, kind: ConflictKind, entity: Entity, row_a: string, row_b: string, version_a: Record<string, unknown>, version_b: Record<string, unknown>, detected_at: string, detected_by: string, resolution: Resolution | null, resolved_at: string | null, resolved_by: string | null, };

export type ConflictsResponse = { conflicts: Array<ConflictView>, };

export type ResolveConflictRequest = { conflict_id: string, resolution: Resolution, };

export type DeskStatusReport = { 
/**
 * Outbox entries not yet acknowledged.
 */
pending: number, 
/**
 * Entries the server refused, kept on the desk for a person.
 */
refused: number, oldest_pending_at: string | null, last_synced_at: string | null, 
/**
 * The last round's error, if it failed (at most 500 characters).
 */
last_error: string | null, schema_version: number, 
/**
 * The desk app's version, e.g. `0.3.0`.
 */
app_version: string, };

export type SignUpRequest = { business_name: string, 
/**
 * 3-63 lowercase letters, digits and hyphens: the business's address.
 */
slug: string, 
/**
 * RETAIL, HEALTHCARE, EDUCATION, LOGISTICS or BEAUTY.
 */
industry: string, email: string, 
/**
 * A Malaysian number, as typed.
 */
phone: string, address_line1: string, address_line2: string, postcode: string, city: string, 
/**
 * A state or federal territory, e.g. `Selangor`, `W.P. Kuala Lumpur`.
 */
state: string, branch_name: string, admin_name: string, admin_email: string, admin_password: string, 
/**
 * `ms` (the default) or `en`.
 */
language: string, };

export type SignUpResponse = { tenant_id: string, branch_id: string, user_id: string, slug: string, 
/**
 * Full access until then.
 */
trial_ends_at: string, };

export type LoginRequest = { 
/**
 * The business's slug.
 */
business: string, email: string, password: string, 
/**
 * The six digits of the person's authenticator app, for a person who has set one up
 * (without it such a login is answered `totp_required`).
 */
totp_code: string | null, };

export type SessionView = { tenant_id: string, business_name: string, user_id: string, name: string, email: string, 
/**
 * Role names, sorted.
 */
roles: Array<string>, 
/**
 * What the roles allow together (`area.action`), sorted.
 */
permissions: Array<string>, 
/**
 * To send as `X-CSRF-Token` with every request that changes something.
 */
csrf_token: string, expires_at: string, 
/**
 * Whether this person logs in with a second factor (TOTP).
 */
totp_enabled: boolean, 
/**
 * The business requires its ADMINs to use a second factor and this one has none yet: until
 * they set it up (`/v1/auth/totp/setup`, then `/confirm`), every other request is refused
 * with `totp_setup_required`.
 */
totp_setup_required: boolean, };

export type RevokeDeviceRequest = { device_id: string, };

export type EnrolRequest = { code: string, device_name: string, 
/**
 * Ask for rotating credentials: a short-lived access token and a refresh token
 * (`POST /v1/devices/refresh`). Without it (desks built before rotation) the token lives until
 * the desk is revoked.
 */
rotating_credentials: boolean, 
/**
 * Re-enrolment: the device id of this same desk, which head office removed (revoked) and
 * issued a reconnect code for. The desk takes its place again, with new credentials, and
 * keeps its data and its outbox, whose numbering and stamps continue; its old credentials
 * stay dead.
 */
replaces_device: string | null, 
/**
 * Re-enrolment: the last outbox seq this desk ever wrote. The server refuses
 * (`device_written_elsewhere`) when it holds more changes under the desk's id than that:
 * another copy of the desk wrote them, and this desk's own would be taken for replays.
 */
last_seq: bigint, };

export type EnrolResponse = { tenant_id: string, branch_id: string, device_id: string, 
/**
 * Bearer token for every later call. Shown once; the desk keeps it in the OS keyring.
 * With rotating credentials it is an access token that ends at `access_expires_at`.
 */
device_token: string, business_name: string, branch_name: string, 
/**
 * Which branches' rows the desk is sent (absent from servers before schema 4: `branch`).
 */
scope: PullScope, 
/**
 * With rotating credentials: when `device_token` stops working (`token_expired`).
 */
access_expires_at?: string | null, 
/**
 * With rotating credentials: exchanged for a new access token and a new refresh token
 * (`POST /v1/devices/refresh`); each works once. Kept in the OS keyring.
 */
refresh_token?: string | null, };

export type ErrorBody = { 
/**
 * Stable machine code, e.g. `sequence_gap`, `unauthorized`, `validation_failed`.
 */
code: string, 
/**
 * A sentence for a person; never internal detail.
 */
message: string, 
/**
 * For `sequence_gap`: the sequence number the server expects next.
 */
expected_seq?: bigint | null, 
/**
 * For `validation_failed`: which fields of which entry failed.
 */
fields?: Array<FieldError>, };

export type Licence = { 
/**
 * The layout's version (1).
 */
version: number, tenant_id: string, device_id: string, 
/**
 * STARTER, GROWTH, PRO or ENTERPRISE.
 */
plan: string, 
/**
 * The modules switched on (RETAIL_POS, CLINIC, ...).
 */
modules: Array<string>, 
/**
 * The plan's limits (none: no limit).
 */
max_modules: number | null, max_users: number | null, max_devices: number | null, 
/**
 * The subscription's state when the lease was issued: TRIAL, ACTIVE, GRACE, SUSPENDED.
 */
state: string, issued_at: string, full_until: string, read_only_until: string, };

export type SignedLicence = { payload: string, signature: string, public_key: string, };

export type AppInfo = { enrolled: boolean, business_name: string | null, branch_name: string | null, device_name: string | null, server_url: string | null, };

export type EnrolForm = { server_url: string, code: string, device_name: string, };

export type RegisterPatientForm = { full_name: string, id_type: IdType, id_number: string, 
/**
 * Any common Malaysian spelling: `012-345 6789`, `+60123456789`, `03-2345 6789`.
 */
phone: string, 
/**
 * `YYYY-MM-DD`; ignored for MyKad (derived from the number), required otherwise.
 */
date_of_birth: string | null, 
/**
 * Ignored for MyKad (derived from the number).
 */
sex: Sex | null, };

export type PatientView = { id: string, full_name: string, id_type: IdType, 
/**
 * Display form, e.g. `900101-14-5678` for MyKad.
 */
id_number: string, 
/**
 * E.164.
 */
phone: string | null, date_of_birth: string | null, sex: Sex | null, created_at: string, 
/**
 * False while the registration waits in the outbox.
 */
synced: boolean, };

export type RefusedChangeView = { 
/**
 * The outbox seq (a JSON number: far below 2^53).
 */
seq: number, entity: string, row_id: string, 
/**
 * The fields the change set, by name.
 */
fields: Array<string>, code: string, message: string, recorded_at: string, };

export type SyncStatusView = { 
/**
 * Whether the last attempt to reach the server succeeded.
 */
online: boolean, syncing: boolean, 
/**
 * Outbox entries not yet acknowledged by the server.
 */
pending: number, 
/**
 * Changes the server refused; they stay on this desk with the reason.
 */
rejected: number, 
/**
 * Conflicts of this branch waiting for a person (e.g. one MyKad registered twice).
 */
open_conflicts: number, 
/**
 * When the oldest change still waiting for the server was made.
 */
oldest_pending_at: string | null, 
/**
 * While a round pulls: changes applied so far and how many it is pulling (0 and 0 when
 * idle), so a first sync of a large branch can show its progress.
 */
pull_done: number, pull_total: number, last_synced_at: string | null, last_error: string | null, 
/**
 * The server no longer takes this desk's credentials (head office removed it): the desk
 * keeps working offline and is reconnected with a new enrolment code (`reenrol`).
 */
needs_reenrolment: boolean, 
/**
 * What the desk's licence lease allows now: FULL, READ_ONLY (the subscription ended: read
 * and export only) or SUSPENDED (no sync either). Nothing is ever hidden or deleted.
 */
licence_access: string, 
/**
 * The business's plan, as the lease says (none before the first lease).
 */
licence_plan: string | null, 
/**
 * When full access ends, and when read-only access ends, as the lease says.
 */
licence_full_until: string | null, licence_read_only_until: string | null, 
/**
 * The modules the business has switched on (the desk shows only these).
 */
licence_modules: Array<string>, };

export type CommandError = { code: string, message: string, fields: Array<FieldError>, };

export type StaffEntry = { user_id: string, name: string, roles: Array<string>, };

export type DeskPeopleView = { sign_in_required: boolean, staff: Array<StaffEntry>, signed_in: StaffEntry | null, };

export type SignInForm = { user_id: string, pin: string, };

export type CatalogueItemForm = { id: string | null, kind: CatalogueKind, code: string, name: string, 
/**
 * Ringgit as typed: `45`, `45.5`, `45.50`, `RM 45.50`.
 */
price: string, tax: TaxCode, duration_minutes: number | null, active: boolean, 
/**
 * The item as the form showed it when it opened (edits only).
 */
opened: CatalogueItemRecord | null, };

export type ClinicalAccess = "clinical" | "emergency" | "closed";

export type ClinicalEntryView = { id: string, kind: ClinicalKind, body: string, 
/**
 * Who wrote it, by the name on this desk's roster (none when unknown or unsigned).
 */
author_name: string | null, written_at: string, 
/**
 * False while the entry waits in the outbox.
 */
synced: boolean, };

export type ClinicalRecordView = { patient_id: string, access: ClinicalAccess, access_until: string | null, 
/**
 * Whether they may add notes and allergies.
 */
may_write: boolean, 
/**
 * Whether they may open the record in an emergency (when it is closed to them).
 */
may_open_in_emergency: boolean, 
/**
 * Newest first; empty when the record is closed to them.
 */
entries: Array<ClinicalEntryView>, };

export type ClinicalEntryForm = { patient_id: string, kind: ClinicalKind, body: string, };

export type EmergencyAccessForm = { patient_id: string, reason: string, };

export type ExportedFileView = { name: string, 
/**
 * Records in it.
 */
records: number, };

export type ExportView = { folder: string, files: Array<ExportedFileView>, 
/**
 * Whether clinical records were included (only for people whose role reads them).
 */
clinical_included: boolean, };
