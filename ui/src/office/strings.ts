//! Every sentence head office's pages show, in one place (as the desk's strings.ts), so Bahasa
//! Melayu can be added as a second table of the same shape.

export const en = {
  appName: "Kaunter head office",
  loading: "Loading…",

  // Sign in.
  signInTitle: "Sign in to head office",
  signInIntro: "For the owner and managers of a business using Kaunter.",
  business: "Business ID",
  businessHint: "The short name your business signed up with, e.g. klinik-sentosa.",
  email: "E-mail",
  password: "Password",
  totpCode: "Code from your authenticator app",
  totpHint: "Six digits; it changes every 30 seconds.",
  signIn: "Sign in",
  signingIn: "Signing in…",
  fillEveryField: "Fill in the business ID, your e-mail and your password.",
  wrongCredentials: "The business ID, e-mail or password is not right.",
  tooManyAttempts: (wait: string) => `Too many failed sign-ins. Try again in ${wait}.`,
  totpRequired: "Your account uses a second factor: enter the code from your authenticator app.",
  totpInvalid: "That code is not right or has already been used. Wait for the next one and try again.",
  businessNotActive: "This business is suspended or closed. Contact Kaunter support.",
  sessionEnded: "Your session has ended. Sign in again.",
  signedOut: "You have signed out.",
  serverUnreachable: "The server cannot be reached. Check the connection and try again.",
  unexpectedError: "Something went wrong. Try again.",

  // Top bar.
  signedInAs: (name: string, email: string) => `Signed in as ${name} (${email})`,
  refresh: "Refresh",
  signOut: "Sign out",

  // Sections.
  notAllowed: "Your role does not allow you to see this.",
  totpSetupRequired:
    "Your business requires administrators to use a second factor. Set one up before using head office.",
  sectionFailed: (message: string) => `This could not be loaded: ${message}`,

  branchesTitle: "Branches",
  branchName: "Branch",
  branchCode: "Code",
  branchStatus: "Status",
  branchDesks: "Desks",
  branchOpen: "Open",
  branchClosed: (date: string) => `Closed ${date}`,
  noBranches: "No branches.",

  desksTitle: "Desks and sync health",
  desksIntro: (hours: number) =>
    `A desk that has not reached the server for ${hours} hours or more is highlighted.`,
  desk: "Desk",
  deskStatus: "Status",
  lastSeen: "Last seen",
  waiting: "Changes waiting",
  refused: "Refused",
  lastSync: "Last sync",
  lastError: "Last error",
  appVersion: "Version",
  noDesks: "No desk is enrolled yet.",
  never: "Never",
  none: "None",

  subscriptionTitle: "Subscription",
  plan: "Plan",
  state: "State",
  access: "Access",
  daysLeft: "Days left",
  trialEnds: "Trial ends",
  periodEnds: "Paid until",
  lastPaid: "Last payment",
  limitsTitle: "Limits in use",
  cancelOffer: "Cancel the subscription…",
  cancelQuestion: (date: string) =>
    `The subscription stays as it is until ${date}, is not renewed, and then ends: the desks become read-only for 7 days and are then suspended. Nothing recorded is deleted, and paying again at any time brings everything back.`,
  cancelConfirm: "Cancel at the end of the period",
  cancelKeep: "Keep the subscription",
  cancelling: "Cancelling…",
  cancelled: "Cancelled: it will not renew.",
  cancelNotAllowed: "Your role does not allow cancelling the subscription.",
  modulesTitle: "Modules",
  modulesIntro:
    "Tick the modules this business uses. The desks show only the modules switched on, from their next sync; nothing recorded is deleted.",
  moduleBeta: "(beta)",
  moduleBetaNote: "Beta: it may still change.",
  moduleNotOffered: "Not offered yet.",
  modulesChosen: "Chosen",
  modulesSave: "Save modules",
  modulesSaving: "Saving…",
  modulesSaved: "Saved. The desks show the change after their next sync.",
  modulesReadOnly: "The subscription has ended: modules can be changed again once it is paid.",
  modulesSuspended: "The subscription is suspended: modules can be changed again once it is paid.",
  modulesNotAllowed: "Your role does not allow changing modules.",
  cancelAtPeriodEnd: (date: string) => `Cancelled: it ends on ${date} and will not renew.`,
  perpetual: "Perpetual licence: no end date.",
  payTitle: "What to pay",
  payGrace: (until: string) =>
    `The subscription has ended. The desks are read-only until ${until}; after that the business is suspended. Nothing is deleted.`,
  paySuspended:
    "The subscription is suspended: the desks no longer sync. Their data stays on them, read-only, and can be exported.",
  payPrices: (plan: string, monthly: string, yearly: string) =>
    `To continue on ${plan}: ${monthly} a month or ${yearly} a year.`,
  payHow:
    "Pay by card or FPX online banking through Kaunter's payment page, or by bank transfer quoting the reference below. Full access returns at the desks' next sync once the payment is recorded.",
  payReference: "Payment reference",

  paymentsTitle: "Payments and invoices",
  paymentDate: "Date",
  paymentKind: "Kind",
  paymentStatus: "Status",
  paymentFor: "For",
  paymentAmount: "Amount",
  paymentReference: "Reference",
  noPayments: "No payments yet.",
  adjustedBy: (days: number) =>
    `${days > 0 ? "+" : "\u2212"}${Math.abs(days)} ${Math.abs(days) === 1 ? "day" : "days"}`,
  refundOfPayment: "Refund of an earlier payment",

  emergencyTitle: "Emergency openings to review",
  emergencyIntro:
    "Someone whose role does not read clinical records opened one in an emergency. Record whether it was justified.",
  openedAt: "Opened",
  patient: "Patient",
  openedBy: "Opened by",
  reason: "Reason given",
  reviewNote: "Review note (optional)",
  justified: "Justified",
  notJustified: "Not justified",
  reviewing: "Saving…",
  reviewedAs: (outcome: string) => `Reviewed: ${outcome}.`,
  alreadyReviewed: "Someone has already reviewed this opening.",
  noEmergencies: "No emergency openings wait for review.",
  unknownPatient: "Patient not synced yet",
  nobody: "Nobody signed in",

  usersTitle: "People",
  userName: "Name",
  userEmail: "E-mail",
  userStatus: "Status",
  userRoles: "Roles",
  userTotp: "Second factor",
  lastLogin: "Last sign-in",
  yes: "Yes",
  no: "No",
  noUsers: "No people.",
} as const;

export const t = en;
