//! The city services room's own error codes (each with an `error.<name>` text).

use yizhan_core::{Class, Code};

/// The application is not in a status that allows this change.
pub const WRONG_STATUS: Code = Code::new("application_status", Class::Conflict);
/// A city has as many services as it may publish.
pub const TOO_MANY: Code = Code::new("city_services_full", Class::Conflict);
/// A payment service is paid in the wallet's bills, not applied for.
pub const PAY_IN_BILLS: Code = Code::new("pay_in_bills", Class::Invalid);

/// No deposit is held for the application (none was asked, it was waived, or it was returned).
pub const NO_DEPOSIT: Code = Code::new("no_deposit_held", Class::Conflict);
/// A deposit is still held for the person (or an application is being paid): the account cannot be deleted yet.
pub const DEPOSIT_HELD: Code = Code::new("deposit_held", Class::Conflict);

/// Confirming a two-person booking needs a verified real name.
pub const NOT_VERIFIED: Code = Code::new("real_name_required", Class::Forbidden);
/// The partner did not confirm before the hold ran out: the place was freed.
pub const INVITATION_EXPIRED: Code = Code::new("invitation_expired", Class::Gone);

pub const ALL: &[Code] =
    &[WRONG_STATUS, TOO_MANY, PAY_IN_BILLS, NO_DEPOSIT, DEPOSIT_HELD, NOT_VERIFIED, INVITATION_EXPIRED];
