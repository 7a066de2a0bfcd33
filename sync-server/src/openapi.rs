//! The OpenAPI 3.0 document of the whole HTTP API, served at `GET /v1/openapi.json`.
//!
//! It is built from [`ROUTES`](crate::ROUTES) and from the wire types' own JSON schemas
//! (schemars derives them beside serde), so a body's fields cannot drift from what the server
//! reads and writes. Each route says here what it takes, what it answers and which error
//! statuses it may give; a route missing from [`operation`] fails every test that builds the
//! document, and `tests/openapi.rs` keeps the committed copy (`sync-server/openapi.json`)
//! current. CI runs schemathesis against a live server with this document.

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Map, Value, json};

use crate::{Caller, ROUTES, Route};

/// What one route takes and answers.
struct Operation {
    summary: &'static str,
    /// The JSON body it reads.
    request: Option<Value>,
    /// Query parameters: (name, schema, description).
    query: Vec<(&'static str, Value, &'static str)>,
    /// The success status and its JSON body (`None`: no body).
    success: (u16, Option<Value>),
    /// Error statuses besides those every route of its caller kind may give.
    errors: &'static [u16],
    /// The success sets the session cookie.
    sets_cookie: bool,
}

fn schema<T: JsonSchema>(generator: &mut SchemaGenerator) -> Option<Value> {
    Some(generator.subschema_for::<T>().to_value())
}

fn operation(route: &Route, g: &mut SchemaGenerator) -> Operation {
    use kaunter_protocol::http as wire;
    let op = |summary, request, success, errors| Operation {
        summary,
        request,
        query: Vec::new(),
        success,
        errors,
        sets_cookie: false,
    };
    let schema_version = (
        "schema_version",
        json!({"type": "integer", "format": "int32", "minimum": 0}),
        "The desk's client schema version; absent means 2.",
    );
    match (route.method, route.path) {
        ("GET", "/v1/health") => op(
            "The server and its database answer.",
            None,
            (200, schema::<crate::routes::health::Health>(g)),
            &[],
        ),
        ("GET", "/v1/openapi.json") => op(
            "This document.",
            None,
            (200, Some(json!({"type": "object"}))),
            &[],
        ),
        ("POST", "/v1/signup") => op(
            "A business signs itself up: business, first branch, roles, settings, trial, ADMIN.",
            schema::<wire::SignUpRequest>(g),
            (201, schema::<wire::SignUpResponse>(g)),
            &[422],
        ),
        ("POST", "/v1/auth/login") => Operation {
            sets_cookie: true,
            ..op(
                "A person logs in to head office (with a TOTP code once they have one).",
                schema::<wire::LoginRequest>(g),
                (200, schema::<wire::SessionView>(g)),
                &[429],
            )
        },
        ("GET", "/v1/auth/session") => op(
            "Who this session is, with its CSRF token.",
            None,
            (200, schema::<wire::SessionView>(g)),
            &[],
        ),
        ("POST", "/v1/auth/logout") => op("Ends the session.", None, (204, None), &[]),
        ("POST", "/v1/auth/totp/setup") => op(
            "A new second-factor secret for this person, live once confirmed.",
            None,
            (200, schema::<wire::TotpSetupResponse>(g)),
            &[409],
        ),
        ("POST", "/v1/auth/totp/confirm") => Operation {
            sets_cookie: true,
            ..op(
                "Turns the second factor on with a code from it; every session of the person ends, this one is renewed.",
                schema::<wire::TotpCodeRequest>(g),
                (200, schema::<wire::SessionView>(g)),
                &[409, 429],
            )
        },
        ("POST", "/v1/auth/totp/disable") => Operation {
            sets_cookie: true,
            ..op(
                "Turns the second factor off with a current code; every session of the person ends, this one is renewed.",
                schema::<wire::TotpCodeRequest>(g),
                (200, schema::<wire::SessionView>(g)),
                &[409, 429],
            )
        },
        ("POST", "/v1/auth/pin") => op(
            "The session's person chooses their six-digit desk PIN.",
            schema::<wire::SetPinRequest>(g),
            (204, None),
            &[422],
        ),
        ("GET", "/v1/staff") => op(
            "Every ACTIVE person of the business with a desk PIN: names, permissions, PIN hashes; in every subscription state.",
            None,
            (200, schema::<wire::StaffResponse>(g)),
            &[],
        ),
        ("POST", "/v1/invitations/accept") => op(
            "An invited person chooses a password and becomes ACTIVE.",
            schema::<wire::AcceptInvitationRequest>(g),
            (204, None),
            &[403, 422],
        ),
        ("GET", "/v1/users") => op(
            "Every person of the business (users.manage).",
            None,
            (200, schema::<wire::UsersResponse>(g)),
            &[],
        ),
        ("POST", "/v1/users/invite") => op(
            "Invites a person (users.manage); the token is shown once.",
            schema::<wire::InviteUserRequest>(g),
            (201, schema::<wire::InvitationResponse>(g)),
            &[404, 409, 422],
        ),
        ("POST", "/v1/users/reinvite") => op(
            "A new invitation for a PENDING person (users.manage).",
            schema::<wire::ReinviteUserRequest>(g),
            (200, schema::<wire::InvitationResponse>(g)),
            &[404, 409, 422],
        ),
        ("POST", "/v1/users/status") => op(
            "Sets a person ACTIVE, INACTIVE or DISABLED (users.manage).",
            schema::<wire::SetUserStatusRequest>(g),
            (200, schema::<wire::UserView>(g)),
            &[404, 409, 422],
        ),
        ("POST", "/v1/users/roles") => Operation {
            sets_cookie: true,
            ..op(
                "Replaces a person's roles (users.manage); their sessions end, the caller's is renewed.",
                schema::<wire::SetUserRolesRequest>(g),
                (200, schema::<wire::UserView>(g)),
                &[404, 409, 422],
            )
        },
        ("POST", "/v1/users/totp-reset") => op(
            "Removes another person's second factor (users.manage).",
            schema::<wire::ResetUserTotpRequest>(g),
            (200, schema::<wire::UserView>(g)),
            &[404, 422],
        ),
        ("GET", "/v1/roles") => op(
            "The roles a person can be given (users.manage).",
            None,
            (200, schema::<wire::RolesResponse>(g)),
            &[],
        ),
        ("GET", "/v1/branches") => op(
            "Every branch of the business.",
            None,
            (200, schema::<wire::BranchesResponse>(g)),
            &[],
        ),
        ("POST", "/v1/branches/add") => op(
            "A new branch (branches.manage).",
            schema::<wire::NewBranchRequest>(g),
            (201, schema::<wire::BranchView>(g)),
            &[422],
        ),
        ("POST", "/v1/branches/rename") => op(
            "Renames a branch (branches.manage).",
            schema::<wire::RenameBranchRequest>(g),
            (200, schema::<wire::BranchView>(g)),
            &[404, 422],
        ),
        ("POST", "/v1/branches/close") => op(
            "Closes a branch: its data stays, no new desks (branches.manage).",
            schema::<wire::CloseBranchRequest>(g),
            (200, schema::<wire::BranchView>(g)),
            &[404],
        ),
        ("GET", "/v1/devices") => op(
            "Every desk of the business with its sync state (devices.manage).",
            None,
            (200, schema::<crate::routes::devices::DevicesResponse>(g)),
            &[],
        ),
        ("POST", "/v1/devices/revoke") => op(
            "Revokes a desk at once; it keeps its data (devices.manage).",
            schema::<wire::RevokeDeviceRequest>(g),
            (204, None),
            &[404],
        ),
        ("GET", "/v1/emergency-access") => Operation {
            query: vec![(
                "state",
                json!({"type": "string", "enum": ["pending", "all"]}),
                "pending (the default): not reviewed yet; all: every opening.",
            )],
            ..op(
                "Emergency openings of clinical records, newest first (access.review).",
                None,
                (
                    200,
                    schema::<crate::routes::emergency_access::EmergencyAccessList>(g),
                ),
                &[],
            )
        },
        ("GET", "/v1/licence") => op(
            "A signed licence lease for the calling desk (Ed25519), in every subscription state.",
            None,
            (200, schema::<wire::SignedLicence>(g)),
            &[],
        ),
        ("GET", "/v1/subscription") => op(
            "The business's plan, state, days left, limits in use, modules and price list (settings.manage).",
            None,
            (
                200,
                schema::<crate::routes::subscription::SubscriptionView>(g),
            ),
            &[],
        ),
        ("PUT", "/v1/subscription/modules") => op(
            "Switches modules on and off (settings.manage): the body is the whole set wanted, and the answer the subscription as GET /v1/subscription shows it; desks get the new set with their next licence lease. Refusals: 422 validation_failed at modules (an unknown module, one whose status is INACTIVE switched on, an empty set), 409 plan_limit_reached (more than the plan allows, the sentence names the limit), 402 subscription_read_only or subscription_suspended.",
            schema::<wire::SetModulesRequest>(g),
            (
                200,
                schema::<crate::routes::subscription::SubscriptionView>(g),
            ),
            &[402, 409, 422],
        ),
        ("GET", "/v1/payments") => op(
            "The business's payments, newest first, at most 200 (settings.manage).",
            None,
            (200, schema::<crate::routes::billing::PaymentsResponse>(g)),
            &[],
        ),
        ("GET", "/v1/payments/invoice") => Operation {
            query: vec![(
                "payment_id",
                json!({"type": "string", "format": "uuid"}),
                "The payment whose invoice (a CHARGE or CREDIT) or refund note (a REFUND) to show.",
            )],
            ..op(
                "The invoice or refund note of one of the business's completed payments (settings.manage); 404 for a payment the business does not have or one with no invoice (failed, pending, an adjustment).",
                None,
                (200, schema::<crate::payments::InvoiceView>(g)),
                &[404],
            )
        },
        ("POST", "/v1/subscription/cancel") => op(
            "Cancels the paid subscription at its period's end (settings.manage); a trial, a perpetual licence or an expired subscription is refused (409 cancel_trial, cancel_perpetual, cancel_expired).",
            None,
            (200, schema::<crate::routes::billing::CancelResponse>(g)),
            &[409],
        ),
        ("POST", "/v1/webhooks/stripe") => op(
            "Stripe's webhook (header Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<body>\">). checkout.session.completed applies the payment its metadata names; charge.refunded refunds the CHARGE whose payment_intent it names (its metadata names the business; a refund naming no payment of the business or more than was paid is 422 and recorded); other events are recorded and ignored; a replayed event is a duplicate. Refusals: 400 webhook_signature_invalid or webhook_stale, 422 webhook_invalid, webhook_unknown_business or webhook_amount_mismatch, 409 with kaunter-core's refusal code, 503 webhook_not_configured.",
            Some(stripe_event_schema()),
            (200, schema::<crate::routes::webhooks::WebhookAnswer>(g)),
            &[409, 422, 503],
        ),
        ("POST", "/v1/webhooks/fpx") => op(
            "An FPX / e-wallet gateway's callback (header X-Signature: hex HMAC-SHA256 of the fields sorted by key, key + value, joined with |). paid true applies the payment reference_2 names for the business reference_1 names; paid false records it as failed. Refusals as for Stripe's webhook.",
            Some(fpx_callback_schema()),
            (200, schema::<crate::routes::webhooks::WebhookAnswer>(g)),
            &[409, 422, 503],
        ),
        ("POST", "/v1/emergency-access/review") => op(
            "Records whether an emergency opening was justified, once (access.review).",
            schema::<crate::routes::emergency_access::ReviewRequest>(g),
            (
                200,
                schema::<crate::routes::emergency_access::EmergencyAccessView>(g),
            ),
            &[404, 409, 422],
        ),
        ("POST", "/v1/devices/refresh") => op(
            "A desk trades its refresh token for a new access token and refresh token; a token used twice revokes the desk.",
            schema::<wire::RefreshRequest>(g),
            (200, schema::<wire::RefreshResponse>(g)),
            &[],
        ),
        ("POST", "/v1/devices/enrolment-codes") => op(
            "A single-use enrolment code for a new desk of a branch (devices.manage).",
            schema::<wire::EnrolmentCodeRequest>(g),
            (201, schema::<wire::EnrolmentCodeResponse>(g)),
            &[404, 409, 422],
        ),
        ("POST", "/v1/settings/security") => op(
            "Whether ADMINs must use a second factor (settings.manage).",
            schema::<wire::SecuritySettings>(g),
            (200, schema::<wire::SecuritySettings>(g)),
            &[],
        ),
        ("POST", "/v1/enrol") => op(
            "A new desk trades a single-use code for its credentials.",
            schema::<wire::EnrolRequest>(g),
            (200, schema::<wire::EnrolResponse>(g)),
            &[409, 422],
        ),
        ("POST", "/v1/sync/push") => op(
            "A desk uploads its outbox, exactly once.",
            schema::<wire::PushRequest>(g),
            (200, schema::<wire::PushResponse>(g)),
            &[409],
        ),
        ("GET", "/v1/sync/pull") => Operation {
            query: vec![
                (
                    "cursor",
                    json!({"type": "integer", "format": "int64"}),
                    "The last change seq the desk has; 0 or absent: from the start.",
                ),
                (
                    "limit",
                    json!({"type": "integer", "format": "int64"}),
                    "Rows per page.",
                ),
                (
                    "count",
                    json!({"type": "boolean"}),
                    "Also count the rows still to come.",
                ),
                schema_version.clone(),
            ],
            ..op(
                "A page of the branch's rows changed after the cursor.",
                None,
                (200, schema::<wire::PullResponse>(g)),
                &[410],
            )
        },
        ("POST", "/v1/sync/status") => op(
            "A desk reports its sync state for head office.",
            schema::<wire::DeskStatusReport>(g),
            (200, schema::<crate::routes::status::Recorded>(g)),
            &[422],
        ),
        ("GET", "/v1/conflicts") => Operation {
            query: vec![
                (
                    "state",
                    json!({"type": "string", "enum": ["open", "all"]}),
                    "Open conflicts (the default) or all.",
                ),
                schema_version,
            ],
            ..op(
                "The conflicts of the desk's branch, newest first.",
                None,
                (200, schema::<wire::ConflictsResponse>(g)),
                &[],
            )
        },
        ("POST", "/v1/conflicts/resolve") => op(
            "Settles a conflict of the desk's branch.",
            schema::<wire::ResolveConflictRequest>(g),
            (200, schema::<wire::ConflictView>(g)),
            &[404, 409],
        ),
        (method, path) => {
            panic!("no OpenAPI description for {method} {path}: add it to openapi.rs")
        }
    }
}

/// The part of a Stripe event the webhook reads.
fn stripe_event_schema() -> Value {
    let text = json!({"type": "string"});
    json!({
        "type": "object",
        "required": ["id", "type"],
        "properties": {
            "id": {"type": "string", "description": "The event id (evt_...)."},
            "type": {"type": "string", "description": "checkout.session.completed and charge.refunded are acted on."},
            "created": {"type": "integer", "format": "int64"},
            "data": {"type": "object", "properties": {"object": {
                "type": "object",
                "properties": {
                    "id": {"type": "string", "description": "The checkout session (cs_...) or the charge (ch_...)."},
                    "payment_intent": {"type": "string", "nullable": true,
                                       "description": "The payment intent (pi_...): kept with a CHARGE, named by its refunds."},
                    "amount_refunded": {"type": "integer", "format": "int64",
                                        "description": "A charge's total refunded so far, in sen."},
                    "amount_total": {"type": "integer", "format": "int64",
                                     "description": "Sen."},
                    "currency": {"type": "string", "description": "myr."},
                    "payment_status": text,
                    "metadata": {"type": "object", "properties": {
                        "tenant_id": text, "plan": text, "cycle": text, "pricing": text}},
                },
            }}},
        },
    })
}

/// The FPX gateway's callback: string fields only.
fn fpx_callback_schema() -> Value {
    let text = |description: &str| json!({"type": "string", "description": description});
    json!({
        "type": "object",
        "required": ["id", "paid", "amount", "paid_at", "reference_1", "reference_2"],
        "properties": {
            "id": text("The gateway's transaction (bill) id."),
            "paid": text("true or false."),
            "amount": text("Ringgit with two decimals, e.g. 49.00."),
            "paid_at": text("RFC 3339."),
            "reference_1": text("The business's id."),
            "reference_2": text("PLAN:CYCLE:PRICING, e.g. STARTER:MONTHLY:SUBSCRIPTION."),
        },
        "additionalProperties": {"type": "string"},
    })
}

/// Error statuses every route of a kind of caller may give: a malformed request or body (400),
/// a body over the limit (413), and for callers with credentials a refused credential (401)
/// or a business that is not active, a role that does not allow it, a wrong CSRF token (403);
/// a desk's sync is also refused by the business's subscription (402: read-only in its grace,
/// or suspended).
fn common_errors(route: &Route) -> &'static [u16] {
    match (route.caller, route.method) {
        (Caller::Anyone, "GET") => &[],
        (Caller::Anyone, _) => &[400, 401, 403, 413],
        (Caller::Device, "GET") => &[400, 401, 402, 403],
        (Caller::Device, _) => &[400, 401, 402, 403, 413],
        (Caller::Session, "GET") => &[400, 401, 403],
        (Caller::Session, _) => &[400, 401, 403, 413],
    }
}

/// The whole document.
pub fn document() -> Value {
    let mut generator = SchemaSettings::openapi3().into_generator();
    let error_body = schema::<kaunter_protocol::http::ErrorBody>(&mut generator);
    let mut paths = Map::new();
    for route in ROUTES {
        let operation = operation(route, &mut generator);
        let mut responses = Map::new();
        let (status, body) = &operation.success;
        let mut success = json!({"description": "Success."});
        if let Some(body) = body {
            success["content"] = json!({"application/json": {"schema": body}});
        }
        if operation.sets_cookie {
            success["headers"] = json!({"Set-Cookie": {
                "description": "The new session cookie (kaunter_session, HttpOnly, Secure, SameSite=Strict).",
                "schema": {"type": "string"}}});
        }
        responses.insert(status.to_string(), success);
        let mut errors: Vec<u16> = common_errors(route)
            .iter()
            .chain(operation.errors)
            .copied()
            .collect();
        // A route that reads a JSON body reads it compressed with zstd too, and no other way.
        if operation.request.is_some() {
            errors.push(415);
        }
        errors.sort_unstable();
        errors.dedup();
        for error in errors {
            responses.insert(
                error.to_string(),
                json!({"description": error_description(error),
                       "content": {"application/json": {"schema": error_body}}}),
            );
        }
        let mut entry = json!({
            "operationId": operation_id(route),
            "summary": operation.summary,
            "responses": responses,
        });
        if let Some(request) = operation.request {
            entry["requestBody"] = json!({"required": true,
                "description": "JSON, as it is or compressed with zstd (Content-Encoding: zstd); over the body limit, as sent or once decompressed, is 413.",
                "content": {"application/json": {"schema": request}}});
        }
        if !operation.query.is_empty() {
            entry["parameters"] = operation
                .query
                .into_iter()
                .map(|(name, schema, description)| {
                    json!({"name": name, "in": "query", "required": false,
                           "description": description, "schema": schema})
                })
                .collect();
        }
        entry["security"] = match route.caller {
            Caller::Anyone => json!([]),
            Caller::Device => json!([{"device": []}]),
            Caller::Session if route.method == "GET" => json!([{"session": []}]),
            Caller::Session => json!([{"session": [], "csrf": []}]),
        };
        let path = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| json!({}));
        path[route.method.to_lowercase()] = entry;
    }
    let mut schemas = Map::new();
    for (name, schema) in generator.take_definitions(true) {
        schemas.insert(name, schema);
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Kaunter sync server",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Desks push their outboxes and pull their branch's rows; head office manages its business. Every error body is an ErrorBody with a stable code. Every answer carries Accept-Encoding: zstd (RFC 7694): a JSON request body may be sent compressed with zstd. Answers of 1 kB or more are compressed (zstd or gzip) for a caller whose Accept-Encoding asks for it.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "device": {"type": "http", "scheme": "bearer",
                           "description": "A desk's token (kt1.<tenant>.<device>.<secret>)."},
                "session": {"type": "apiKey", "in": "cookie", "name": "kaunter_session"},
                "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token"},
            },
        },
    })
}

fn operation_id(route: &Route) -> String {
    let mut id = route.method.to_lowercase();
    for part in route.path.trim_start_matches("/v1/").split(['/', '-', '.']) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            id.push(first.to_ascii_uppercase());
            id.extend(chars);
        }
    }
    id
}

fn error_description(status: u16) -> &'static str {
    match status {
        400 => "Malformed request, body or query (bad_request and other stable codes).",
        401 => "No valid credential, or a wrong login or second-factor code.",
        402 => {
            "The business's subscription refuses it: read-only in its grace (subscription_read_only) or suspended (subscription_suspended)."
        }
        403 => {
            "Not allowed: the business is not active, the role does not allow it, or the CSRF token is missing."
        }
        404 => "No such record in this business.",
        409 => {
            "The state does not allow it (a sequence gap, a resolved conflict, the last ADMIN, a closed branch, a plan limit, a payment or cancellation the subscription refuses)."
        }
        410 => "The desk must download its branch again (resync_required).",
        413 => "The body is over the limit.",
        415 => {
            "The body's Content-Encoding is not one the server reads (unsupported_content_encoding): send it as it is, or compressed with zstd."
        }
        422 => {
            "Some fields are not valid; each says why (for a webhook: an event that cannot be used)."
        }
        429 => "Too many failed attempts; see Retry-After.",
        503 => "Not configured here (webhook_not_configured), or the server is busy.",
        _ => "Error.",
    }
}

/// `GET /v1/openapi.json`.
pub async fn serve() -> axum::Json<Value> {
    axum::Json(document())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn every_route_is_described_once() {
        let document = document();
        let mut described = 0;
        for route in ROUTES {
            let entry = &document["paths"][route.path][route.method.to_lowercase()];
            assert!(entry.is_object(), "{} {}", route.method, route.path);
            described += 1;
        }
        let operations: usize = document["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|methods| methods.as_object().unwrap().len())
            .sum();
        assert_eq!(operations, described);
        assert_eq!(described, ROUTES.len());
        // Every reference resolves.
        let text = document.to_string();
        for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = &reference[..reference.find('"').unwrap()];
            assert!(
                document["components"]["schemas"][name].is_object(),
                "{name} is referenced but not defined"
            );
        }
        assert_eq!(operation_id(&ROUTES[0]), "getHealth");
    }
}
