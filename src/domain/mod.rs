//! Plain types shared by every other module: addresses, identifiers, statuses.
//! Nothing here does I/O, so everything here can be tested with values alone.

pub mod address;
pub mod duration;
pub mod ids;

pub use address::{Address, AddressError, Mailbox};
pub use ids::MessageId;
