// Korean (the default, like the guide) and English. The browser's language list
// picks one (navigator.languages: the first of them that is Korean or English); the
// switch in the header overrides it and is remembered (a language choice only).

const KEY = "mtpaas-console-lang";

const ko = {
  "app.title": "mtpaas 운영 콘솔",
  "app.subtitle": "운영 콘솔",
  "app.skip": "본문으로 건너뛰기",
  "nav.label": "주 메뉴",
  "nav.tenants": "테넌트",
  "nav.applications": "서비스 신청",
  "lang.switch": "English",
  "lang.switch_label": "Switch to English",
  "lang.switched": "한국어로 표시합니다.",
  "session.signed_in_as": "로그인: {who}",
  "session.sign_out": "로그아웃",
  "signin.title": "운영 콘솔 로그인",
  "signin.intro": "슈퍼관리자 토큰(SUPERADMIN_TOKEN) 또는 슈퍼관리자 JWT로 로그인합니다. 토큰은 이 브라우저에 저장되지 않으며, 로그인하면 잠시 유지되는 세션 쿠키만 받습니다.",
  "signin.token": "슈퍼관리자 토큰",
  "signin.help": "서버를 시작할 때 설정한 값입니다. 개발 모드에서는 터미널에 한 번 표시됩니다.",
  "signin.submit": "로그인",
  "signin.empty": "토큰을 입력하세요.",
  "signin.refused": "로그인할 수 없습니다: 슈퍼관리자 토큰(또는 슈퍼관리자 JWT)이 아닙니다.",
  "signin.done": "로그인했습니다.",
  "signin.notice_expired": "세션이 만료되었거나 종료되었습니다. 다시 로그인하세요.",
  "signin.notice_signed_out": "로그아웃했습니다. 콘솔 페이지는 다시 로그인해야 열립니다.",
  "common.loading": "불러오는 중…",
  "common.error_title": "문제가 생겼습니다",
  "common.cancel": "취소",
  "common.retry": "다시 시도",
  "tenants.title": "테넌트",
  "tenants.all": "전체",
  "tenants.counts_label": "상태별 테넌트 수",
  "tenants.search": "검색 (ID, 이름, 관리자 이메일)",
  "tenants.status": "상태",
  "tenants.page_size": "한 페이지",
  "tenants.apply": "검색",
  "tenants.paging": "페이지",
  "tenants.prev": "이전",
  "tenants.next": "다음",
  "tenants.page_of": "{page} / {pages} 페이지",
  "tenants.showing": "전체 {total}개 중 {first}–{last}",
  "tenants.none": "아직 테넌트가 없습니다.",
  "tenants.none_match": "조건에 맞는 테넌트가 없습니다.",
  "tenants.caption": "테넌트 목록",
  "tenants.activity_failed": "최근 활동을 불러오지 못했습니다: {reason}",
  "tenants.demo_unknown": "데모 종료일을 확인하지 못했습니다(서비스 마켓 DB): {reason}",
  "tenants.demo_soon_help": "⚠ 표시는 {days}일 안에 끝나는(또는 끝난) 데모입니다. 호출 수는 최근 24시간(UTC 시 단위), 최근 활동은 마지막 대화 시각입니다.",
  "col.tenant": "테넌트",
  "col.status": "상태",
  "col.kind": "유형",
  "col.application": "신청 ID",
  "col.created": "생성",
  "col.last_activity": "최근 활동",
  "col.calls_24h": "24시간 호출",
  "status.active": "활성",
  "status.suspended": "정지",
  "status.deleted": "삭제됨",
  "status.purged": "파기됨",
  "kind.demo": "데모",
  "kind.service": "서비스",
  "kind.none": "미지정",
  "appstatus.requested": "신청",
  "appstatus.approved": "승인",
  "appstatus.completed": "완료",
  "appstatus.rejected": "반려",
  "demo.ended": "⚠ 데모 종료됨",
  "demo.soon": "⚠ 데모 종료 임박: {days}일 남음",
  "demo.soon_hours": "⚠ 데모 종료 임박: {hours}시간 남음",
  "demo.left": "데모 {days}일 남음",
  "tenant.back": "테넌트 목록",
  "tenant.not_found_title": "테넌트를 찾을 수 없습니다",
  "tenant.not_found": "테넌트 {id}이(가) 없습니다.",
  "tenant.registry": "등록 정보",
  "tenant.actions": "조치",
  "tenant.now_status": "현재 상태: {status}",
  "tenant.actions_help": "정지된 테넌트의 요청은 403, 삭제된 테넌트는 410으로 거부됩니다. 데이터는 그대로 남고, 복구하면 원래대로 돌아옵니다.",
  "tenant.usage": "사용량",
  "tenant.schema": "스키마",
  "tenant.backups": "백업",
  "tenant.history": "이력 (오래된 순)",
  "field.tenant_id": "테넌트 ID",
  "field.tenant_name": "이름",
  "field.status": "상태",
  "field.admin_email": "관리자 이메일",
  "field.admin_name": "관리자 이름",
  "field.university_name": "대학",
  "field.contact": "연락처",
  "field.description": "설명",
  "field.application_id": "서비스 신청 ID",
  "field.application_kind": "유형",
  "field.node": "노드 (Citus)",
  "field.created_at": "생성",
  "field.updated_at": "변경",
  "field.suspended_at": "정지 시각",
  "field.suspended_reason": "정지 사유",
  "field.deleted_at": "삭제 시각",
  "field.deleted_reason": "삭제 사유",
  "action.reason": "사유 (이력에 남습니다)",
  "action.reason_help": "최대 255자. 비워 두어도 됩니다.",
  "action.suspend.button": "정지…",
  "action.suspend.title": "{name} 정지",
  "action.suspend.explain": "{id}의 모든 요청이 403으로 거부됩니다. 데이터는 그대로 남고, 복구하면 다시 쓸 수 있습니다.",
  "action.suspend.confirm": "{id} 정지",
  "action.suspend.done": "{id}을(를) 정지했습니다. 현재 상태: {status}.",
  "action.reinstate.button": "복구…",
  "action.reinstate.title": "{name} 복구",
  "action.reinstate.explain": "{id}을(를) 다시 활성으로 바꿉니다. 요청이 곧바로 다시 처리됩니다.",
  "action.reinstate.confirm": "{id} 복구",
  "action.reinstate.done": "{id}을(를) 복구했습니다. 현재 상태: {status}.",
  "action.delete.button": "삭제…",
  "action.delete.title": "{name} 삭제",
  "action.delete.explain": "{id}의 요청이 410으로 거부됩니다. 스키마와 데이터는 보존 기간(RETENTION_DAYS)이 지나 파기될 때까지 남고, 그 전에는 복구할 수 있습니다.",
  "action.delete.confirm": "{id} 삭제",
  "action.delete.type_id": "확인을 위해 테넌트 ID({id})를 입력하세요",
  "action.delete.mismatch": "입력한 ID가 {id}와(과) 다릅니다.",
  "action.delete.done": "{id}을(를) 삭제했습니다. 현재 상태: {status}.",
  "action.unchanged": "{id}은(는) 이미 {status} 상태입니다. 바뀐 것이 없습니다.",
  "action.conflict": "허용되지 않는 상태 변경입니다: {id}은(는) 현재 {status} 상태라 {action} 수 없습니다.",
  "action.suspend.verb": "정지할",
  "action.reinstate.verb": "복구할",
  "action.delete.verb": "삭제할",
  "usage.users": "사용자",
  "usage.chats": "대화",
  "usage.last_activity": "최근 활동",
  "usage.calls_total": "API 호출 (전체)",
  "usage.calls_24h": "API 호출 (최근 24시간)",
  "usage.chart_title": "최근 {days}일 일별 API 호출 (UTC)",
  "usage.chart_total": "합계 {n}회",
  "usage.as_table": "표로 보기",
  "usage.day": "날짜 (UTC)",
  "usage.calls": "호출",
  "usage.no_calls": "이 기간에 호출이 없습니다.",
  "schema.checking": "템플릿과 비교하는 중…",
  "schema.recheck": "다시 점검",
  "schema.version": "스키마 버전",
  "schema.template_version": "템플릿({template}) 버전",
  "schema.in_sync": "템플릿과 일치합니다 (차이 없음).",
  "schema.drift": "템플릿과 {n}개 차이가 있습니다.",
  "schema.drift_help": "mtpaas check 와 같은 점검입니다. 버전이 다르면 mtpaas migrate 로 맞춥니다.",
  "schema.not_checked": "파기된 테넌트라 점검할 스키마가 없습니다.",
  "schema.failed": "점검하지 못했습니다: {reason}",
  "backup.explain": "mtpaas backup 과 같은 백업(pg_dump)을 서버의 BACKUP_DIR에 만듭니다. 복구(mtpaas restore)에는 아카이브와 manifest.json이 함께 필요합니다.",
  "backup.purged": "파기된 테넌트라 백업할 스키마가 없습니다.",
  "backup.now": "지금 백업",
  "backup.running": "{id} 백업 중…",
  "backup.done": "{id} 백업 완료: {size} ({run}).",
  "backup.download_archive": "아카이브 내려받기",
  "backup.failed": "백업하지 못했습니다: {reason}",
  "backup.list": "이 테넌트의 백업",
  "backup.none": "이 서버에 이 테넌트의 백업이 없습니다.",
  "backup.when": "시각",
  "backup.size": "크기",
  "backup.version": "버전",
  "backup.download": "내려받기",
  "backup.archive": "아카이브",
  "backup.manifest": "manifest.json",
  "history.caption": "테넌트 이력, 오래된 순",
  "history.at": "시각",
  "history.event": "사건",
  "history.actor": "주체",
  "history.detail": "내용",
  "history.none": "이력이 없습니다.",
  "event.created": "생성",
  "event.suspended": "정지",
  "event.reinstated": "복구",
  "event.deleted": "삭제",
  "event.purged": "파기",
  "event.restored": "백업에서 복원",
  "event.kind_changed": "유형 변경",
  "apps.title": "서비스 신청",
  "apps.summary": "신청 {n}건, 그중 테넌트가 있는 신청 {with}건",
  "apps.caption": "서비스 마켓 신청과 각 신청의 테넌트",
  "apps.id": "신청 ID",
  "apps.kind": "유형",
  "apps.status": "신청 상태",
  "apps.university": "대학",
  "apps.email": "신청자 이메일",
  "apps.created": "신청일 (마켓 시각)",
  "apps.demo_expires": "데모 종료 (마켓 시각)",
  "apps.tenant": "테넌트",
  "apps.no_tenant": "없음",
  "apps.none": "이 서비스의 신청이 없습니다.",
  "apps.help": "서비스 마켓 MySQL에서 읽기 전용으로 가져옵니다(가이드 5.2).",
  "apps.market_down": "서비스 마켓 DB에 연결할 수 없습니다.",
  "apps.market_down_detail": "서버의 답: {detail}",
  "apps.market_down_help": "테넌트 운영(목록, 정지, 복구)은 마켓 DB와 상관없이 계속됩니다. SERVICE_MARKET_DATABASE_URL과 마켓 MySQL을 확인한 뒤 다시 시도하세요.",
  "error.network": "서버에 연결할 수 없습니다. 네트워크나 서버 상태를 확인하세요.",
  "error.401": "세션이 만료되었습니다. 다시 로그인하세요.",
  "error.csrf": "보안 토큰(CSRF)이 없거나 맞지 않아 거부되었습니다. 페이지를 새로 고친 뒤 다시 하세요.",
  "error.cross_site": "다른 사이트에서 보낸 요청이라 거부되었습니다.",
  "error.403": "권한이 없어 거부되었습니다.",
  "error.404": "찾을 수 없습니다.",
  "error.409": "지금 상태에서는 할 수 없는 요청입니다.",
  "error.4xx": "요청이 거부되었습니다.",
  "error.503": "지금은 처리할 수 없습니다(일시적으로 사용할 수 없음).",
  "error.5xx": "서버 오류입니다.",
  "error.server_says": "서버의 답",
};

const en = {
  "app.title": "mtpaas operator console",
  "app.subtitle": "operator console",
  "app.skip": "Skip to content",
  "nav.label": "Main menu",
  "nav.tenants": "Tenants",
  "nav.applications": "Applications",
  "lang.switch": "한국어",
  "lang.switch_label": "한국어로 보기",
  "lang.switched": "Showing the console in English.",
  "session.signed_in_as": "Signed in: {who}",
  "session.sign_out": "Sign out",
  "signin.title": "Sign in to the operator console",
  "signin.intro": "Sign in with the superadmin token (SUPERADMIN_TOKEN) or a superadmin JWT. The token is not kept in this browser; signing in gives a short-lived session cookie only.",
  "signin.token": "Superadmin token",
  "signin.help": "The value the server was started with; in development mode it is shown once on the terminal.",
  "signin.submit": "Sign in",
  "signin.empty": "Enter the token.",
  "signin.refused": "Cannot sign in: this is not the superadmin token (or a superadmin JWT).",
  "signin.done": "Signed in.",
  "signin.notice_expired": "The session expired or was ended. Sign in again.",
  "signin.notice_signed_out": "Signed out. The console's pages open again only after signing in.",
  "common.loading": "Loading…",
  "common.error_title": "Something went wrong",
  "common.cancel": "Cancel",
  "common.retry": "Try again",
  "tenants.title": "Tenants",
  "tenants.all": "All",
  "tenants.counts_label": "Tenants by status",
  "tenants.search": "Search (id, name, admin email)",
  "tenants.status": "Status",
  "tenants.page_size": "Per page",
  "tenants.apply": "Search",
  "tenants.paging": "Pages",
  "tenants.prev": "Previous",
  "tenants.next": "Next",
  "tenants.page_of": "Page {page} of {pages}",
  "tenants.showing": "{first}–{last} of {total}",
  "tenants.none": "No tenants yet.",
  "tenants.none_match": "No tenant matches.",
  "tenants.caption": "Tenants",
  "tenants.activity_failed": "Could not load recent activity: {reason}",
  "tenants.demo_unknown": "Demo end dates unknown (service market database): {reason}",
  "tenants.demo_soon_help": "⚠ marks a demo ending within {days} days (or ended). Calls are the last 24 hours (UTC hours); last activity is the latest chat message.",
  "col.tenant": "Tenant",
  "col.status": "Status",
  "col.kind": "Kind",
  "col.application": "Application",
  "col.created": "Created",
  "col.last_activity": "Last activity",
  "col.calls_24h": "Calls, 24 h",
  "status.active": "Active",
  "status.suspended": "Suspended",
  "status.deleted": "Deleted",
  "status.purged": "Purged",
  "kind.demo": "Demo",
  "kind.service": "Service",
  "kind.none": "Unspecified",
  "appstatus.requested": "Requested",
  "appstatus.approved": "Approved",
  "appstatus.completed": "Completed",
  "appstatus.rejected": "Rejected",
  "demo.ended": "⚠ Demo ended",
  "demo.soon": "⚠ Demo ends soon: {days} days left",
  "demo.soon_hours": "⚠ Demo ends soon: {hours} hours left",
  "demo.left": "Demo: {days} days left",
  "tenant.back": "Tenants",
  "tenant.not_found_title": "Tenant not found",
  "tenant.not_found": "There is no tenant {id}.",
  "tenant.registry": "Registry",
  "tenant.actions": "Actions",
  "tenant.now_status": "Current status: {status}",
  "tenant.actions_help": "A suspended tenant's requests get 403, a deleted one's 410. The data stays; reinstating brings everything back.",
  "tenant.usage": "Usage",
  "tenant.schema": "Schema",
  "tenant.backups": "Backups",
  "tenant.history": "History (oldest first)",
  "field.tenant_id": "Tenant id",
  "field.tenant_name": "Name",
  "field.status": "Status",
  "field.admin_email": "Admin email",
  "field.admin_name": "Admin name",
  "field.university_name": "University",
  "field.contact": "Contact",
  "field.description": "Description",
  "field.application_id": "Application id",
  "field.application_kind": "Kind",
  "field.node": "Node (Citus)",
  "field.created_at": "Created",
  "field.updated_at": "Updated",
  "field.suspended_at": "Suspended at",
  "field.suspended_reason": "Suspension reason",
  "field.deleted_at": "Deleted at",
  "field.deleted_reason": "Deletion reason",
  "action.reason": "Reason (kept in the history)",
  "action.reason_help": "Up to 255 characters; may be left empty.",
  "action.suspend.button": "Suspend…",
  "action.suspend.title": "Suspend {name}",
  "action.suspend.explain": "Every request of {id} will get 403. The data stays; reinstating makes it usable again.",
  "action.suspend.confirm": "Suspend {id}",
  "action.suspend.done": "{id} suspended. Status now: {status}.",
  "action.reinstate.button": "Reinstate…",
  "action.reinstate.title": "Reinstate {name}",
  "action.reinstate.explain": "{id} becomes active again; its requests are served at once.",
  "action.reinstate.confirm": "Reinstate {id}",
  "action.reinstate.done": "{id} reinstated. Status now: {status}.",
  "action.delete.button": "Delete…",
  "action.delete.title": "Delete {name}",
  "action.delete.explain": "Requests of {id} will get 410. Its schema and data stay until purged after the retention period (RETENTION_DAYS); until then it can be reinstated.",
  "action.delete.confirm": "Delete {id}",
  "action.delete.type_id": "To confirm, type the tenant id ({id})",
  "action.delete.mismatch": "The id you typed is not {id}.",
  "action.delete.done": "{id} deleted. Status now: {status}.",
  "action.unchanged": "{id} is already {status}; nothing changed.",
  "action.conflict": "Transition not allowed: {id} is {status}, so it cannot be {action}.",
  "action.suspend.verb": "suspended",
  "action.reinstate.verb": "reinstated",
  "action.delete.verb": "deleted",
  "usage.users": "Users",
  "usage.chats": "Chats",
  "usage.last_activity": "Last activity",
  "usage.calls_total": "API calls (all time)",
  "usage.calls_24h": "API calls (last 24 h)",
  "usage.chart_title": "API calls per day, last {days} days (UTC)",
  "usage.chart_total": "{n} in all",
  "usage.as_table": "Show as a table",
  "usage.day": "Day (UTC)",
  "usage.calls": "Calls",
  "usage.no_calls": "No calls in this period.",
  "schema.checking": "Comparing with the template…",
  "schema.recheck": "Check again",
  "schema.version": "Schema version",
  "schema.template_version": "Template ({template}) version",
  "schema.in_sync": "Matches the template (no difference).",
  "schema.drift": "{n} difference(s) from the template.",
  "schema.drift_help": "The same check as mtpaas check. A version behind is brought up by mtpaas migrate.",
  "schema.not_checked": "Purged: there is no schema to check.",
  "schema.failed": "Could not check: {reason}",
  "backup.explain": "Makes the same backup as mtpaas backup (pg_dump) in the server's BACKUP_DIR. A restore (mtpaas restore) needs the archive with its manifest.json.",
  "backup.purged": "Purged: there is no schema to back up.",
  "backup.now": "Back up now",
  "backup.running": "Backing up {id}…",
  "backup.done": "{id} backed up: {size} ({run}).",
  "backup.download_archive": "Download the archive",
  "backup.failed": "The backup failed: {reason}",
  "backup.list": "Backups of this tenant",
  "backup.none": "No backup of this tenant on this server.",
  "backup.when": "Time",
  "backup.size": "Size",
  "backup.version": "Version",
  "backup.download": "Download",
  "backup.archive": "archive",
  "backup.manifest": "manifest.json",
  "history.caption": "Tenant history, oldest first",
  "history.at": "Time",
  "history.event": "Event",
  "history.actor": "Actor",
  "history.detail": "Detail",
  "history.none": "No history.",
  "event.created": "Created",
  "event.suspended": "Suspended",
  "event.reinstated": "Reinstated",
  "event.deleted": "Deleted",
  "event.purged": "Purged",
  "event.restored": "Restored from a backup",
  "event.kind_changed": "Kind changed",
  "apps.title": "Applications",
  "apps.summary": "{n} application(s), {with} of them with a tenant",
  "apps.caption": "The service market's applications and each one's tenant",
  "apps.id": "Application",
  "apps.kind": "Kind",
  "apps.status": "Application status",
  "apps.university": "University",
  "apps.email": "Applicant email",
  "apps.created": "Applied (market time)",
  "apps.demo_expires": "Demo ends (market time)",
  "apps.tenant": "Tenant",
  "apps.no_tenant": "none",
  "apps.none": "No applications for this service.",
  "apps.help": "Read only from the service market's MySQL (guide 5.2).",
  "apps.market_down": "The service market database cannot be reached.",
  "apps.market_down_detail": "The server says: {detail}",
  "apps.market_down_help": "Tenant operations (list, suspend, reinstate) go on without it. Check SERVICE_MARKET_DATABASE_URL and the market's MySQL, then try again.",
  "error.network": "Cannot reach the server. Check the network or the server.",
  "error.401": "The session expired. Sign in again.",
  "error.csrf": "Refused: the security (CSRF) token is missing or does not match. Reload the page and try again.",
  "error.cross_site": "Refused: the request came from another site.",
  "error.403": "Refused: not allowed.",
  "error.404": "Not found.",
  "error.409": "Not possible in the current state.",
  "error.4xx": "The request was refused.",
  "error.503": "Cannot be done right now (temporarily unavailable).",
  "error.5xx": "Server error.",
  "error.server_says": "the server says",
};

const DICTS = { ko, en };

function fromBrowser() {
  for (const l of navigator.languages || [navigator.language || ""]) {
    const base = String(l).toLowerCase().split("-")[0];
    if (base === "ko" || base === "en") return base;
  }
  return "ko";
}

function saved() {
  try {
    const v = localStorage.getItem(KEY);
    return v === "ko" || v === "en" ? v : null;
  } catch {
    return null;
  }
}

let current = saved() || fromBrowser();

export function lang() {
  return current;
}

export function otherLang() {
  return current === "ko" ? "en" : "ko";
}

export function setLang(l) {
  current = l === "en" ? "en" : "ko";
  try {
    localStorage.setItem(KEY, current);
  } catch {
    // Private mode: the choice lasts for this page only.
  }
}

/** The text of `key` with `{name}` placeholders filled; `fallback` (or the key) if unknown. */
export function t(key, vars = {}, fallback) {
  const s = DICTS[current][key] ?? DICTS.ko[key] ?? fallback ?? key;
  return s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
}

const locale = () => (current === "ko" ? "ko-KR" : "en-GB");

export function fmtNumber(n) {
  return new Intl.NumberFormat(locale()).format(Number(n) || 0);
}

export function fmtDateTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return new Intl.DateTimeFormat(locale(), { dateStyle: "medium", timeStyle: "short" }).format(d);
}

/** A UTC day (YYYY-MM-DD) in short form. */
export function fmtDay(day) {
  const d = new Date(`${day}T00:00:00Z`);
  return new Intl.DateTimeFormat(locale(), { month: "short", day: "numeric", timeZone: "UTC" }).format(d);
}

/** The market's times carry no zone: shown as the market stores them. */
export function fmtMarketTime(v) {
  return v ? String(v).replace("T", " ").slice(0, 16) : "—";
}

export function fmtBytes(b) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = Number(b) || 0;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

export function statusText(s) {
  return t(`status.${s}`, {}, s);
}

export function kindText(k) {
  return k ? t(`kind.${k}`, {}, k) : t("kind.none");
}

export function appStatusText(s) {
  return s ? t(`appstatus.${s}`, {}, s) : "—";
}

export function eventText(e) {
  return t(`event.${e}`, {}, e);
}

/** The mark of a demo: ended, ending soon, or days left. */
export function demoText(secondsLeft, soon) {
  if (secondsLeft <= 0) return t("demo.ended");
  const days = Math.round(secondsLeft / 86400);
  if (soon && days < 1) return t("demo.soon_hours", { hours: Math.max(1, Math.floor(secondsLeft / 3600)) });
  return t(soon ? "demo.soon" : "demo.left", { days });
}

/** An error of a call, in words: what it means, then what the server said. */
export function describeError(e) {
  if (!e || typeof e.status !== "number") return String((e && e.message) || e);
  if (e.status === 0) return t("error.network");
  let sentence;
  if (e.code === "csrf_token_missing" || e.code === "csrf_token_invalid") sentence = t("error.csrf");
  else if (e.code === "cross_site_request") sentence = t("error.cross_site");
  else if ([401, 403, 404, 409, 503].includes(e.status)) sentence = t(`error.${e.status}`);
  else sentence = t(e.status >= 500 ? "error.5xx" : "error.4xx");
  const said = e.detail ? ` (${t("error.server_says")}: ${e.detail})` : "";
  return `${sentence}${said} [HTTP ${e.status}${e.code ? ` ${e.code}` : ""}]`;
}

/** An action's error: a 409 says which transition was refused. */
export function describeActionError(e, action, tenant) {
  if (e && e.status === 409) {
    const sentence = t("action.conflict", { id: tenant.tenant_id, status: statusText(tenant.status), action: t(`action.${action}.verb`) });
    return `${sentence} (${t("error.server_says")}: ${e.detail}) [HTTP 409 ${e.code}]`;
  }
  return describeError(e);
}
