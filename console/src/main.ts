import { createPinia } from 'pinia'
import { createApp } from 'vue'
import 'element-plus/theme-chalk/base.css'
import App from './App.vue'
import { createConsoleRouter } from './router'
import './styles.css'

const app = createApp(App)
app.use(createPinia())
app.use(createConsoleRouter())
app.mount('#app')
