//! Every IPC command, declared once. Each translates to one core call, after checking that the
//! calling window may act for the profile (the window's label, never a parameter the page
//! sends, decides). The `commands!` macro turns this list into the Tauri commands, the handler,
//! the list `build.rs` makes permissions from, and the TypeScript bindings the UI calls.

use switchboard_core::account::{Envelope, Paid, PendingPayment, Register, Registered};
use switchboard_core::media::{ImageUpload, MediaData};
use switchboard_core::moments::MomentView;
use switchboard_core::notify::Policy;
use switchboard_core::official::{
    CustomerMessage, InboxEntry, InboxFilter, OperatedOfficial, PublishOutcome, PublishTarget,
};
use switchboard_core::stats::Resources;
use switchboard_core::store::{Conversation, OutboxEntry, StoredMessage};
use switchboard_core::{ConversationId, ProfileId, ProfileInfo, PublicId, SignIn};
use switchboard_protocol::auth::{SmsCodeSent, SmsPurpose};
use switchboard_protocol::messaging::{
    Contact, ContactRequestList, ContactRequestState, Group, Message, UserProfile,
};
use switchboard_protocol::moments::Visibility;
use switchboard_protocol::official::{Article, CustomerConversation, OfficialAccount};
use switchboard_protocol::wallet::{Claimed, MoneyMoved, RedEnvelope, TransactionPage, Wallet};

use crate::ipc::{Caller, IpcResult};
use crate::shell::{AppInfo, EventChannel, SearchHit, Shell};

macro_rules! commands {
    ($(
        $(#[doc = $doc:literal])*
        fn $name:ident($caller:ident, $shell:ident, $app:ident $(, $arg:ident: $ty:ty)* $(,)?) -> $ret:ty $body:block
    )*) => {
        $(
            $(#[doc = $doc])*
            #[tauri::command(rename_all = "snake_case")]
            pub async fn $name<R: tauri::Runtime>(
                window: tauri::WebviewWindow<R>,
                state: tauri::State<'_, Shell>,
                $($arg: crate::ipc::Arg<$ty>),*
            ) -> IpcResult<$ret> {
                $(let $arg: $ty = $arg.0;)*
                let $caller = Caller::of(&window);
                let $shell: &Shell = &state;
                let $app = tauri::Manager::app_handle(&window).clone();
                let _ = (&$caller, &$shell, &$app);
                $body
            }
        )*

        /// Every command's name, in declaration order.
        pub const COMMANDS: &[&str] = &[$(stringify!($name)),*];

        /// The IPC handler the app (and its tests) install.
        pub fn handler<R: tauri::Runtime>() -> impl Fn(tauri::ipc::Invoke<R>) -> bool + Send + Sync + 'static {
            tauri::generate_handler![$($name),*]
        }

        /// Adds every command, with its argument and result types, to the TypeScript bindings.
        pub fn typescript(out: &mut crate::bindings::Bindings) {
            $(
                let args = vec![$((stringify!($arg), out.ty::<$ty>())),*];
                out.command::<$ret>(stringify!($name), args, &[$($doc),*]);
            )*
        }
    };
}

commands! {
    /// The app's version and the service a new profile uses unless told otherwise.
    fn app_info(caller, shell, app) -> AppInfo {
        Ok(shell.info(&caller))
    }

    /// Opens this window's stream of events (`UiEvent`): every profile's for the main window,
    /// only its own profile's for a profile window. The calling window decides, never the page.
    fn subscribe_events(caller, shell, app, on_event: EventChannel) -> () {
        shell.subscribe(&caller, on_event.0)
    }

    /// Every profile (main window) or the window's own (a profile window), in sidebar order.
    fn list_profiles(caller, shell, app) -> Vec<ProfileInfo> {
        let all = shell.engine.list_profiles().await?;
        Ok(all.into_iter().filter(|p| caller.may_act_for(&p.record.id).is_ok()).collect())
    }

    /// Adds a profile by signing in (public ID or phone, password, TOTP when asked).
    fn add_profile(caller, shell, app, form: SignIn) -> ProfileInfo {
        caller.must_be_main()?;
        let info = shell.engine.add_profile(form).await?;
        Ok(info)
    }

    /// Texts a code to the phone (registering, signing in, recovering). `allow_insecure_http`:
    /// the user allowed plain http to this service although it is not on this computer.
    fn request_sms_code(caller, shell, app, server: String, phone: String, purpose: SmsPurpose, allow_insecure_http: bool) -> SmsCodeSent {
        caller.must_be_main()?;
        Ok(shell.engine.request_sms_code(&server, &phone, purpose, allow_insecure_http).await?)
    }

    /// A development service's newest code for this phone (its SMS outbox).
    fn dev_sms_code(caller, shell, app, server: String, phone: String, purpose: SmsPurpose, allow_insecure_http: bool) -> Option<String> {
        caller.must_be_main()?;
        Ok(shell.engine.dev_sms_code(&server, &phone, purpose, allow_insecure_http).await?)
    }

    /// Registers a new account (or the number's secondary) and adds it as a profile.
    fn register_profile(caller, shell, app, form: Register) -> Registered {
        caller.must_be_main()?;
        Ok(shell.engine.register_profile(form).await?)
    }

    /// Signs the session out, deletes the keyring entry and the profile's folder.
    fn remove_profile(caller, shell, app, profile: ProfileId) -> () {
        caller.must_be_main()?;
        crate::shell::close_profile_window(&app, &profile);
        Ok(shell.engine.remove_profile(&profile).await?)
    }

    fn rename_profile(caller, shell, app, profile: ProfileId, name: String) -> () {
        caller.must_be_main()?;
        Ok(shell.engine.rename_profile(&profile, &name).await?)
    }

    fn recolor_profile(caller, shell, app, profile: ProfileId, color: String) -> () {
        caller.must_be_main()?;
        Ok(shell.engine.recolor_profile(&profile, &color).await?)
    }

    /// Puts the profiles in this order (ids).
    fn reorder_profiles(caller, shell, app, ids: Vec<ProfileId>) -> () {
        caller.must_be_main()?;
        Ok(shell.engine.reorder_profiles(&ids).await?)
    }

    /// Opens (or brings up) the profile in its own window, beside the main one.
    fn open_profile_window(caller, shell, app, profile: ProfileId) -> () {
        caller.must_be_main()?;
        let info = shell.engine.profile(&profile).await?;
        crate::shell::open_profile_window(&app, &info.record.id, &info.record.name)
    }

    fn conversations(caller, shell, app, profile: ProfileId) -> Vec<Conversation> {
        let profile = caller.act_for(profile)?;
        Ok(shell.engine.conversations(&profile).await?)
    }

    fn messages(caller, shell, app, profile: ProfileId, conversation: ConversationId) -> Vec<StoredMessage> {
        let profile = caller.act_for(profile)?;
        Ok(shell.engine.messages(&profile, &conversation).await?)
    }

    /// Messages written but not yet accepted by the service (shown as pending).
    fn outbox(caller, shell, app, profile: ProfileId) -> Vec<OutboxEntry> {
        let profile = caller.act_for(profile)?;
        Ok(shell.engine.outbox(&profile).await?)
    }

    /// Queues a message with up to 9 images (text optional then); it goes out now if online,
    /// else on reconnect, its images uploaded once.
    fn send_message(caller, shell, app, profile: ProfileId, to: ConversationId, body: String, images: Vec<ImageUpload>) -> OutboxEntry {
        let profile = caller.act_for(profile)?;
        Ok(shell.engine.send_with_images(&profile, &to, &body, &images).await?)
    }

    /// An image of the profile by media id (or the local key of one waiting to be sent): its
    /// thumbnail, or the full image. From the profile's own cache, else fetched once.
    fn media(caller, shell, app, profile: ProfileId, key: String, full: bool) -> MediaData {
        let profile = caller.act_for(profile)?;
        Ok(shell.engine.media(&profile, &key, full).await?)
    }

    /// One page of Moments, newest first: one profile's feed, or (no profile) the merged feed
    /// of every profile this window may act for, each post marked with the profile that sees
    /// it. `before`: the id of the oldest post shown.
    fn moments_feed(caller, shell, app, profile: Option<ProfileId>, before: Option<String>) -> Vec<MomentView> {
        let profiles = match profile {
            Some(p) => vec![caller.act_for(p)?],
            None => shell
                .engine
                .list_profiles()
                .await?
                .into_iter()
                .map(|p| p.record.id)
                .filter(|id| caller.may_act_for(id).is_ok())
                .collect(),
        };
        Ok(shell.engine.moments(&profiles, before.as_deref()).await?)
    }

    /// Posts a Moment with text and up to 9 images, for every contact or only / all but some.
    fn post_moment(caller, shell, app, profile: ProfileId, text: String, images: Vec<ImageUpload>, visibility: Visibility) -> MomentView {
        let profile = caller.act_for(profile)?;
        Ok(shell.engine.post_moment(&profile, &text, &images, visibility).await?)
    }

    fn like_moment(caller, shell, app, profile: ProfileId, moment_id: String) -> MomentView {
        let profile = caller.act_for(profile)?;
        Ok(shell.engine.like_moment(&profile, &moment_id).await?)
    }

    fn comment_moment(caller, shell, app, profile: ProfileId, moment_id: String, text: String, reply_to: Option<String>) -> MomentView {
        let profile = caller.act_for(profile)?;
        Ok(shell.engine.comment_moment(&profile, &moment_id, &text, reply_to).await?)
    }

    /// Deletes one of the profile's own posts.
    fn delete_moment(caller, shell, app, profile: ProfileId, moment_id: String) -> () {
        let profile = caller.act_for(profile)?;
        Ok(shell.engine.delete_moment(&profile, &moment_id).await?)
    }

    fn mark_read(caller, shell, app, profile: ProfileId, conversation: ConversationId) -> () {
        let profile = caller.act_for(profile)?;
        shell.engine.mark_read(&profile, &conversation).await?;
        shell.refresh_tray(&app).await;
        Ok(())
    }

    /// The conversation this window shows (none: a list or another page); while the window has
    /// focus it raises no notifications.
    fn set_open_conversation(caller, shell, app, profile: ProfileId, conversation: Option<ConversationId>) -> () {
        let profile = caller.act_for(profile)?;
        shell.set_open_conversation(&caller, profile, conversation);
        Ok(())
    }

    /// Full-text search of one profile's messages, or of every profile's (main window only).
    fn search(caller, shell, app, profile: Option<ProfileId>, text: String) -> Vec<SearchHit> {
        let hits = match profile {
            Some(p) => {
                let p = caller.act_for(p)?;
                shell.engine.search(&p, &text).await?.into_iter().map(|message| SearchHit { profile: p.clone(), message }).collect()
            }
            None => {
                caller.must_be_main()?;
                shell.engine.search_all(&text).await?.into_iter().map(|(profile, message)| SearchHit { profile, message }).collect()
            }
        };
        Ok(hits)
    }

    fn find_user(caller, shell, app, profile: ProfileId, public_id: PublicId) -> UserProfile {
        let profile = caller.act_for(profile)?;
        Ok(shell.engine.find_user(&profile, &public_id).await?)
    }

    fn contacts(caller, shell, app, profile: ProfileId) -> Vec<Contact> {
        let profile = caller.act_for(profile)?;
        Ok(shell.engine.contacts(&profile).await?)
    }

    fn contact_requests(caller, shell, app, profile: ProfileId) -> ContactRequestList {
        let profile = caller.act_for(profile)?;
        Ok(shell.engine.contact_requests(&profile).await?)
    }

    fn request_contact(caller, shell, app, profile: ProfileId, public_id: PublicId, note: String) -> ContactRequestState {
        let profile = caller.act_for(profile)?;
        Ok(shell.engine.request_contact(&profile, &public_id, &note).await?)
    }

    fn accept_contact(caller, shell, app, profile: ProfileId, request_id: String) -> () {
        let profile = caller.act_for(profile)?;
        Ok(shell.engine.accept_contact(&profile, &request_id).await?)
    }

    fn groups(caller, shell, app, profile: ProfileId) -> Vec<Group> {
        let profile = caller.act_for(profile)?;
        Ok(shell.engine.groups(&profile).await?)
    }

    fn create_group(caller, shell, app, profile: ProfileId, name: String, members: Vec<PublicId>) -> Group {
        let profile = caller.act_for(profile)?;
        Ok(shell.engine.create_group(&profile, &name, members).await?)
    }

    fn wallet(caller, shell, app, profile: ProfileId) -> Wallet {
        let profile = caller.act_for(profile)?;
        Ok(shell.engine.wallet(&profile).await?)
    }

    fn transactions(caller, shell, app, profile: ProfileId, before: Option<i64>) -> TransactionPage {
        let profile = caller.act_for(profile)?;
        Ok(shell.engine.transactions(&profile, before).await?)
    }

    fn verify_identity(caller, shell, app, profile: ProfileId, legal_name: String, id_number: String) -> () {
        let profile = caller.act_for(profile)?;
        Ok(shell.engine.verify_identity(&profile, &legal_name, &id_number).await?)
    }

    /// `confirmed`: the user confirmed the profile after `confirm_profile` asked.
    fn top_up(caller, shell, app, profile: ProfileId, amount: i64, confirmed: bool) -> MoneyMoved {
        let profile = caller.act_for(profile)?;
        Ok(shell.engine.top_up(&profile, amount, confirmed).await?)
    }

    fn transfer(caller, shell, app, profile: ProfileId, to: PublicId, amount: i64, note: String, confirmed: bool) -> MoneyMoved {
        let profile = caller.act_for(profile)?;
        Ok(shell.engine.transfer(&profile, &to, amount, &note, confirmed).await?)
    }

    fn send_red_envelope(caller, shell, app, profile: ProfileId, envelope: Envelope, confirmed: bool) -> RedEnvelope {
        let profile = caller.act_for(profile)?;
        Ok(shell.engine.send_red_envelope(&profile, envelope, confirmed).await?)
    }

    /// Payments whose answer never came (they outlive a restart): each can be tried again,
    /// which never pays twice, or abandoned.
    fn pending_payments(caller, shell, app, profile: ProfileId) -> Vec<PendingPayment> {
        let profile = caller.act_for(profile)?;
        Ok(shell.engine.pending_payments(&profile).await?)
    }

    /// Sends a pending payment again under its first idempotency key.
    fn retry_payment(caller, shell, app, profile: ProfileId, payment: String, confirmed: bool) -> Paid {
        let profile = caller.act_for(profile)?;
        Ok(shell.engine.retry_payment(&profile, &payment, confirmed).await?)
    }

    /// Forgets a pending payment (whatever the service did with it stands).
    fn abandon_payment(caller, shell, app, profile: ProfileId, payment: String) -> () {
        let profile = caller.act_for(profile)?;
        Ok(shell.engine.abandon_payment(&profile, &payment).await?)
    }

    fn claim_red_envelope(caller, shell, app, profile: ProfileId, envelope_id: String) -> Claimed {
        let profile = caller.act_for(profile)?;
        Ok(shell.engine.claim_red_envelope(&profile, &envelope_id).await?)
    }

    fn notification_policy(caller, shell, app, profile: ProfileId) -> Policy {
        let profile = caller.act_for(profile)?;
        Ok(shell.engine.policy(&profile).await?)
    }

    fn set_notification_policy(caller, shell, app, profile: ProfileId, policy: Policy) -> () {
        caller.must_be_main()?;
        Ok(shell.engine.set_policy(&profile, policy).await?)
    }

    /// Global do-not-disturb: no notification from any profile while on.
    fn set_do_not_disturb(caller, shell, app, on: bool) -> () {
        caller.must_be_main()?;
        shell.set_do_not_disturb(&app, on).await;
        Ok(())
    }

    /// Whether the app starts at login, in the tray.
    fn start_at_login(caller, shell, app) -> bool {
        caller.must_be_main()?;
        crate::platform::start_at_login(&app)
    }

    /// Turns starting at login (in the tray) on or off; answers what the system now has.
    fn set_start_at_login(caller, shell, app, on: bool) -> bool {
        caller.must_be_main()?;
        crate::platform::set_start_at_login(&app, on)
    }

    /// The UI's language ("en" or "zh"), so the tray speaks it too.
    fn set_language(caller, shell, app, lang: String) -> () {
        caller.must_be_main()?;
        shell.set_language(&app, &lang).await?;
        Ok(())
    }

    /// Every official account a profile operates (main window), or the window's own
    /// profile's, with unanswered customer conversations counted.
    fn official_accounts(caller, shell, app) -> Vec<OperatedOfficial> {
        let mut all = shell.engine.official_accounts().await?;
        all.retain(|o| caller.may_act_for(&o.profile).is_ok());
        Ok(all)
    }

    /// The customer conversations of every official account the window may act for, newest
    /// first.
    fn customer_inbox(caller, shell, app, filter: InboxFilter) -> Vec<InboxEntry> {
        let mut all = shell.engine.customer_inbox(&filter).await?;
        all.retain(|e| caller.may_act_for(&e.profile).is_ok());
        Ok(all)
    }

    fn customer_messages(caller, shell, app, profile: ProfileId, official_id: String, customer: String) -> Vec<CustomerMessage> {
        let profile = caller.act_for(profile)?;
        Ok(shell.engine.customer_messages(&profile, &official_id, &customer).await?)
    }

    /// Claims a customer conversation for the profile's account (the other operators see it).
    fn claim_conversation(caller, shell, app, profile: ProfileId, official_id: String, customer: String) -> CustomerConversation {
        let profile = caller.act_for(profile)?;
        Ok(shell.engine.claim_conversation(&profile, &official_id, &customer).await?)
    }

    /// Answers a customer as the official account, from the profile that operates it.
    fn reply_as(caller, shell, app, profile: ProfileId, official_id: String, customer: String, body: String) -> Message {
        let profile = caller.act_for(profile)?;
        Ok(shell.engine.reply_as(&profile, &official_id, &customer, &body).await?)
    }

    /// One article to several official accounts, each through its operator's profile (every
    /// one of which this window must be allowed to act for); one outcome per account. The
    /// same `key` again publishes nothing twice.
    fn publish_article(caller, shell, app, targets: Vec<PublishTarget>, title: String, body: String, key: String) -> Vec<PublishOutcome> {
        for target in &targets {
            caller.may_act_for(&target.profile)?;
        }
        Ok(shell.engine.publish(&targets, &title, &body, &key).await)
    }

    fn follow_official(caller, shell, app, profile: ProfileId, official_id: String) -> OfficialAccount {
        let profile = caller.act_for(profile)?;
        Ok(shell.engine.follow_official(&profile, &official_id).await?)
    }

    fn articles(caller, shell, app, profile: ProfileId, official_id: String) -> Vec<Article> {
        let profile = caller.act_for(profile)?;
        Ok(shell.engine.articles(&profile, &official_id).await?)
    }

    /// What each profile costs (traffic, events per minute, database size, connection
    /// history) beside the app's memory; a profile window sees its own profile only.
    fn resources(caller, shell, app) -> Resources {
        let mut all = shell.engine.resources().await?;
        all.profiles.retain(|p| caller.may_act_for(&p.profile).is_ok());
        Ok(all)
    }
}
