//! Every sentence the desk shows, in one place, so Bahasa Melayu can be added as a second table
//! of the same shape without touching the screens.

export const en = {
  appName: "Kaunter",

  // Start-up.
  loading: "Opening the desk…",
  bootFailedTitle: "The desk could not start",
  tryAgain: "Try again",

  // First run.
  setupTitle: "Set up this desk",
  setupIntro:
    "Connect this computer to your business. Ask the owner or head office for an enrolment code.",
  setupServerUrl: "Server address",
  setupServerUrlHint: "Usually given to you with the code.",
  setupCode: "Enrolment code",
  setupCodeHint: "Looks like XXXX-XXXX-XXXX.",
  setupDeviceName: "Desk name",
  setupDeviceNameHint: "How this computer appears to head office, e.g. Front desk 1.",
  setupSubmit: "Connect",
  setupSubmitting: "Connecting…",

  // Who is at the desk.
  signInTitle: "Who is at the desk?",
  signInChoose: "Choose your name.",
  signInAs: (name: string) => `Signing in as ${name}`,
  signInPin: "Your six-digit desk PIN",
  signInSubmit: "Sign in",
  signedInAs: (name: string) => `Signed in: ${name}`,
  switchUser: "Switch user",

  // Patients screen.
  deskLabel: (deviceName: string) => `Desk: ${deviceName}`,
  registerTitle: "Register a patient",
  fullName: "Full name",
  fullNameHint: "As written on the identity document.",
  idType: "ID type",
  idTypes: {
    mykad: "MyKad",
    passport: "Passport",
    army_police: "Army or police no.",
    old_ic: "Old IC",
  },
  idNumber: "ID number",
  idNumberHintMykad: "12 digits, with or without dashes: 900101-14-5678.",
  idNumberHintOther: "As written on the document.",
  phone: "Phone",
  phoneHint: "e.g. 012-345 6789",
  dateOfBirth: "Date of birth",
  dateOfBirthHint: "DD/MM/YYYY",
  dateOfBirthFromMykad: "Taken from the MyKad number.",
  sex: "Sex",
  sexChoose: "Choose…",
  sexes: { male: "Male", female: "Female" },
  register: "Register",
  registering: "Registering…",
  registered: (name: string) => `Registered ${name}.`,
  badDateOfBirth: "Enter the date of birth as DD/MM/YYYY, e.g. 31/12/1990.",

  // Live MyKad preview (a convenience; the Rust side decides).
  mykadPreview: (dob: string, sex: string) => `From the MyKad: born ${dob}, ${sex.toLowerCase()}.`,
  mykadPreviewBadDate: "The first six digits are not a real date (YYMMDD).",
  mykadPreviewBadPlace: "Digits 7–8 are not a valid place-of-birth code.",

  // Patient list.
  patientsTitle: "Patients",
  search: "Search patients",
  searchPlaceholder: "Name, IC or phone",
  columnName: "Name",
  columnId: "ID",
  columnPhone: "Phone",
  columnDob: "Date of birth",
  columnSex: "Sex",
  columnSync: "Sync",
  notSynced: "Not yet synced",
  noPatientsYet: "No patients yet. Register the first one with the form.",
  noMatches: (query: string) => `No patient matches “${query}”.`,
  listShowsRecent: "Showing the most recent registrations.",
  dash: "—",

  // Status bar.
  online: "Online",
  offline: "Offline",
  syncing: "Syncing…",
  syncingProgress: (done: number, total: number) =>
    `Syncing ${done.toLocaleString("en-MY")} of ${total.toLocaleString("en-MY")}…`,
  oldestWaiting: (when: string) => `oldest from ${when}`,
  conflictsWaiting: (count: number) =>
    count === 1 ? "1 conflict to resolve" : `${count} conflicts to resolve`,
  conflictsTitle: "Conflicts to resolve",
  conflictsIntro:
    "These records were made on different desks while they could not see each other. Both are kept until you decide.",
  noConflicts: "No conflicts to resolve.",
  duplicateIdNumber: "The same identity number was registered twice.",
  conflictFirst: "Registered first",
  conflictSecond: "Registered later",
  appointmentOverlap: "One practitioner was booked twice for the same time.",
  bookedFirst: "Booked first",
  bookedSecond: "Booked later",
  resolveKeepFirstBooking: "Keep the first, cancel the later",
  resolveKeepLaterBooking: "Keep the later, cancel the first",
  resolveKeepBothBookings: "Keep both bookings",
  conflictField: (name: string) =>
    (
      ({
        full_name: "Name",
        id_number: "ID number",
        phone: "Phone",
        date_of_birth: "Date of birth",
        sex: "Sex",
        starts_at: "Starts",
        ends_at: "Ends",
        status: "Status",
        note: "Note",
      }) as Record<string, string>
    )[name] ?? name,
  resolveMerge: "Same person: merge into the first",
  resolveKeepA: "Keep the first only",
  resolveKeepB: "Keep the later only",
  resolveKeepBoth: "Different people: keep both",
  close: "Close",
  refusedTitle: "Changes the server refused",
  refusedIntro:
    "These changes stay on this desk and are not sent again. Discard a change to get the server's version of the record back, then correct it if needed.",
  noRefused: "No refused changes.",
  discardRefused: "Discard this change",
  discardRefusedHint: "The record goes back to what the server has.",
  refusedDetail: (fields: string, when: string, code: string) => `(${fields}; made ${when}; ${code})`,
  rejected: (count: number) =>
    count === 1
      ? "1 change refused by the server: it stays on this desk; ask your administrator"
      : `${count} changes refused by the server: they stay on this desk; ask your administrator`,
  pending: (count: number) =>
    count === 0 ? "No changes waiting" : count === 1 ? "1 change waiting" : `${count} changes waiting`,
  lastSynced: (when: string) => `Last synced ${when}`,
  neverSynced: "Never synced",
  syncNow: "Sync now",
  statusUnavailable: "Sync status unavailable",

  // Modules: which the business has switched on, as the desk's licence lease says.
  moduleNames: {
    RETAIL_POS: "Retail point of sale",
    CLINIC: "Clinic",
    SALON: "Salon",
    EDUCATION: "Education",
    LOGISTICS: "Logistics",
  } as Record<string, string>,
  modulesOn: (names: string) => `Switched on for this business: ${names}.`,
  modulesNoneOn: "No module is switched on for this business.",
  modulesNoScreens: (desk: string) =>
    `This desk has screens for ${desk} only, so it shows none of them. Head office switches modules on and off (Subscription, on its page); this desk follows at its next sync. Nothing recorded here is deleted: Export data still exports everything.`,

  // The subscription, as the desk's licence lease says.
  licenceReadOnly: (until: string | null) =>
    `This business's subscription has ended, so this desk is read-only: everything can still be read and exported, and nothing is lost. Once head office pays (its Kaunter page says what and how), this desk writes and syncs again.${until ? ` Read-only access ends ${until}.` : ""}`,
  licenceSuspended:
    "This business's subscription is suspended (or this desk has not reached the server for too long): the desk is read-only and does not sync. Everything can still be read and exported. Once head office has paid, connect to the server and sync.",
  licenceEndsSoon: (days: number) =>
    days === 0
      ? "The subscription ends today: head office can renew it (its Kaunter page says how)."
      : `The subscription ends in ${days} ${days === 1 ? "day" : "days"}: head office can renew it (its Kaunter page says how).`,

  // A desk head office removed.
  reconnectDesk: "Reconnect this desk",
  reconnectTitle: "Reconnect this desk",
  reconnectIntro:
    "The server no longer accepts this desk: head office removed it, or its credentials were lost. Everything on this desk is kept, including the changes waiting to be sent. Ask head office for a reconnect code for this desk (they remove the desk first if they have not) and enter it here.",
  reconnectCode: "Enrolment code",
  reconnectSubmit: "Reconnect",
  reconnectDone: "This desk is connected again; what waited is being sent.",

  // The catalogue.
  catalogueOpen: "Catalogue",
  exportOpen: "Export data",
  exportTitle: "Export this desk's data",
  exportWorking: "Writing the files…",
  exportDone: (folder: string) => `Written to ${folder}`,
  exportFile: (name: string, records: number) => `${name}: ${records} ${records === 1 ? "record" : "records"}`,
  exportPrivate:
    "These files hold personal data in the clear (PDPA 2010): keep them safe, share them only with who needs them, and delete them when done. Clinical records are not included for your role.",
  exportPrivateClinical:
    "These files hold personal and clinical data in the clear (PDPA 2010): keep them safe, share them only with who needs them, and delete them when done.",
  catalogueTitle: "Products and services",
  catalogueIntro:
    "One catalogue for every branch of the business. Changes reach the other branches at their next sync.",
  catalogueShowInactive: "Show items no longer offered",
  catalogueEmpty: "The catalogue is empty.",
  catalogueKind: "Kind",
  catalogueKinds: { service: "Service", product: "Product" },
  catalogueCode: "Code",
  catalogueCodeHint: "Your own code or barcode, e.g. SVC-01. Letters, digits and - _ . / only.",
  catalogueName: "Name",
  cataloguePrice: "Price (RM)",
  cataloguePriceHint: "Before tax, e.g. 45.00.",
  catalogueTax: "Tax",
  taxCodes: { exempt: "No tax", service_6: "Service tax 6%", service_8: "Service tax 8%" },
  catalogueDuration: "Duration (minutes)",
  catalogueDurationHint: "For a service that is booked; leave empty otherwise.",
  durationInvalid: "Enter whole minutes, e.g. 30.",
  minutes: (count: number) => (count === 1 ? "1 minute" : `${count} minutes`),
  catalogueActive: "Offered",
  catalogueInactive: "not offered",
  catalogueAdd: "Add to catalogue",
  catalogueSave: "Save changes",
  catalogueEdit: "Change",
  catalogueCancelEdit: "Cancel",
  catalogueAdded: (name: string) => `${name} added to the catalogue.`,
  catalogueSaved: (name: string) => `${name} saved.`,

  // Clinical records.
  clinicalOpen: "Clinical record",
  clinicalOpenFor: (name: string) => `Clinical record of ${name}`,
  columnClinical: "Clinical record",
  clinicalTitle: "Clinical record",
  clinicalPatient: (name: string) => `Patient: ${name}`,
  clinicalClosed: "This clinical record is closed to your role.",
  clinicalEmergencyIntro:
    "In an emergency you may open it for 30 minutes, or until you sign out. Your name and your reason are recorded with the patient's record and reviewed by head office.",
  clinicalReason: "Why the record is needed now",
  clinicalReasonHint: "e.g. Patient collapsed at the counter; the ambulance crew asks about allergies.",
  clinicalOpenInEmergency: "Open in an emergency",
  clinicalEmergencyUntil: (time: string) => `Opened in an emergency until ${time}`,
  clinicalEmergency: "Opened in an emergency",
  clinicalEntriesTitle: "Entries, newest first",
  clinicalEmpty: "Nothing recorded yet.",
  clinicalKinds: { note: "Note", allergy: "Allergy", emergency_access: "Opened in an emergency" },
  clinicalWaiting: "Waiting to sync",
  clinicalAddTitle: "Add to the record",
  clinicalKind: "Kind",
  clinicalBody: "Entry",
  clinicalBodyHint: "An entry cannot be changed once saved; to correct one, add another.",
  clinicalSave: "Save",
  clinicalSaved: (kind: string) => `${kind} saved.`,

  // Errors that start in the window rather than in Rust.
  notInDesktop:
    "This window is not running inside the Kaunter desk app, so it cannot reach the desk's data. Start Kaunter from its app icon.",
  unexpectedError: "Something went wrong. Try again; if it keeps happening, restart Kaunter.",
} as const;

export type Strings = typeof en;

/** The table in use. One language for now; a language switch would replace this. */
export const t: Strings = en;
