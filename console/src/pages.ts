import type { RouteComponent, RouteRecordRaw } from 'vue-router'
import type { MenuEntry } from '@/menus'
import { routePath } from '@/menus'

// The console's pages by menu key: what a myMenus page entry opens. Each page is its own chunk (route-split);
// a menu key the console has no page for opens a "not built yet" page. Pages not in the role's myMenus are never
// added to the router, so typing their URL finds nothing.
type Loader = () => Promise<RouteComponent | { default: RouteComponent }>

export const PAGES: Record<string, { component: Loader; children?: { path: string; name: string; component: Loader }[] }> = {
  'clinical.patients': {
    component: () => import('@/pages/PatientsPage.vue'),
    children: [{ path: ':id', name: 'patient', component: () => import('@/pages/PatientPage.vue') }],
  },
  'system.users': { component: () => import('@/pages/UsersPage.vue') },
  'system.roles': { component: () => import('@/pages/RolesPage.vue') },
  'system.departments': { component: () => import('@/pages/DepartmentsPage.vue') },
  'operations.sessions': { component: () => import('@/pages/SessionsPage.vue') },
  'operations.jobs': { component: () => import('@/pages/JobsPage.vue') },
  'integrity.audit': { component: () => import('@/pages/AuditPage.vue') },
  'operations.caches': { component: () => import('@/pages/CachesPage.vue') },
  'operations.users': { component: () => import('@/pages/UserStatsPage.vue') },
  'operations.stats': { component: () => import('@/pages/ServiceStatsPage.vue') },
  'operations.server': { component: () => import('@/pages/ServerPage.vue') },
  'appointments.schedules': { component: () => import('@/pages/SchedulesPage.vue') },
  'appointments.list': { component: () => import('@/pages/AppointmentsPage.vue') },
  'consultations.review': { component: () => import('@/pages/MessageReviewPage.vue') },
  'consultations.mine': { component: () => import('@/pages/ConversationsPage.vue') },
  'education.articles': { component: () => import('@/pages/ArticlesPage.vue') },
  'moderation.comments': { component: () => import('@/pages/CommentsPage.vue') },
  'system.dictionaries': { component: () => import('@/pages/DictionariesPage.vue') },
  'system.menus': { component: () => import('@/pages/MenusPage.vue') },
  'system.positions': { component: () => import('@/pages/PositionsPage.vue') },
  'integrity.logins': { component: () => import('@/pages/LoginLogPage.vue') },
  'integrity.break-glass': { component: () => import('@/pages/BreakGlassPage.vue') },
  'system.operation-log': { component: () => import('@/pages/OperationLogPage.vue') },
  'moderation.keywords': { component: () => import('@/pages/KeywordsPage.vue') },
  'education.videos': { component: () => import('@/pages/VideosPage.vue') },
  'clinical.follow-ups': { component: () => import('@/pages/FollowUpsPage.vue') },
  'clinical.outcomes': { component: () => import('@/pages/OutcomesPage.vue') },
  'clinical.icd': { component: () => import('@/pages/IcdPage.vue') },
  'clinical.protocols': { component: () => import('@/pages/ProtocolsPage.vue') },
  'learning.tasks': { component: () => import('@/pages/LearningTasksPage.vue') },
  'patients.binding': { component: () => import('@/pages/BindingCodesPage.vue') },
  'patients.export': { component: () => import('@/pages/FhirExportPage.vue') },
  'patients.fhir-bulk': { component: () => import('@/pages/FhirBulkExportPage.vue') },
}

const NOT_BUILT: Loader = () => import('@/pages/NotBuiltPage.vue')

/** The routes of the role's menu pages, children of the layout route. */
export function menuRoutes(pages: readonly MenuEntry[]): RouteRecordRaw[] {
  const routes: RouteRecordRaw[] = []
  for (const entry of pages) {
    const page = PAGES[entry.key]
    const path = routePath(entry)
    if (path === '/' || path === '/dashboard') continue // the dashboard is always there
    routes.push({ path, name: `menu:${entry.key}`, component: page?.component ?? NOT_BUILT, meta: { menuKey: entry.key } })
    for (const child of page?.children ?? []) {
      routes.push({ path: `${path}/${child.path}`, name: child.name, component: child.component, meta: { menuKey: entry.key } })
    }
  }
  return routes
}
