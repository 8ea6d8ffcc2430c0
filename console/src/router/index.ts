import { createRouter, createWebHistory, type Router } from 'vue-router'
import { whenSessionLost } from '@/api/client'
import { menuRoutes } from '@/pages'
import { useAuth } from '@/stores/auth'
import { useLabels } from '@/stores/labels'
import { useMenus } from '@/stores/menus'

const LAYOUT = 'layout'
let added: (() => void)[] = []

export function createConsoleRouter(): Router {
  const router = createRouter({
    history: createWebHistory('/admin/'),
    routes: [
      { path: '/login', name: 'login', component: () => import('@/pages/LoginPage.vue'), meta: { public: true } },
      { path: '/change-password', name: 'change-password', component: () => import('@/pages/ChangePasswordPage.vue') },
      {
        path: '/',
        name: LAYOUT,
        component: () => import('@/layout/ConsoleLayout.vue'),
        children: [
          { path: '', name: 'dashboard', component: () => import('@/pages/DashboardPage.vue') },
          { path: ':rest(.*)*', name: 'not-routed', component: () => import('@/pages/NotRoutedPage.vue') },
        ],
      },
    ],
  })

  let navigating = false
  router.afterEach(() => {
    navigating = false
  })
  router.beforeEach(async (to) => {
    navigating = true
    const auth = useAuth()
    const menus = useMenus()
    if (to.meta.public) return true
    if (!auth.loggedIn) return { name: 'login', query: { redirect: to.fullPath } }
    if (!auth.me) {
      const problem = await auth.loadMe()
      if (problem && !auth.loggedIn) return { name: 'login', query: { redirect: to.fullPath } }
    }
    if (auth.mustChangePassword) return to.name === 'change-password' ? true : { name: 'change-password', query: { redirect: to.fullPath } }
    if (menus.state === 'idle') {
      await menus.load()
      for (const route of menuRoutes(menus.pages)) added.push(router.addRoute(LAYOUT, route))
      return to.fullPath // matched again, now against the role's pages
    }
    return true
  })

  // The refresh token was refused (session ended, password changed elsewhere): log in again, then come back here.
  whenSessionLost(() => {
    const auth = useAuth()
    auth.forget()
    resetRoutes()
    if (navigating) return // the guard sees the session gone and sends the navigation to login itself
    const here = router.currentRoute.value
    if (!here.meta.public) void router.push({ name: 'login', query: { redirect: here.fullPath } })
  })
  return router
}

/** Forget the role's pages (on logout): the next user's menus decide again. */
export function resetRoutes(): void {
  for (const remove of added) remove()
  added = []
  useMenus().reset()
  useLabels().reset()
}
